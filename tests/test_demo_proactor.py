"""The proactor demo copies a file through io_uring (Linux) or a completion port (Windows, Wine)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from poorio.platform import iocp, uring

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(not (uring.available() or iocp.available()),
                    reason=f"no proactor here (io_uring: {uring.unavailable_reason()})")
def test_proactor_copy_selftest():
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "demos", "proactor_copy.py"), "--selftest"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"copied {5 * 65536 + 123} bytes through" in proc.stdout and "identical" in proc.stdout
