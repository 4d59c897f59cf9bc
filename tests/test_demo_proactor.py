"""The proactor demo copies a file through io_uring (Linux) or a completion port (Windows, Wine)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from poorio.platform import backends, iocp, uring

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


@pytest.mark.parametrize("forced", [None] + [b for b in ("epoll", "kqueue", "wsapoll", "poll") if b in backends()][:1])
def test_file_fibers_selftest(forced):
    """The file demo checksums a file with 8 fibers: io_uring or IOCP operations where they work, else (or forced) threads."""
    env = dict(os.environ)
    env.pop("POORIO_BACKEND", None)
    if forced:
        env["POORIO_BACKEND"] = forced
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "demos", "file_fibers.py"), "--selftest"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "matches a plain read" in proc.stdout
    # Every Windows scheduler has a completion port beside its readiness backend.
    kernel = iocp.available() or (forced is None and "uring" in backends())
    assert (("IOCP" if iocp.available() else "io_uring") + " operations" in proc.stdout) == kernel
    if kernel:
        assert "gave up after 0.2 s (True); the next read got b'written after the timeout'" in proc.stdout
    else:
        assert "worker threads" in proc.stdout and "needs io_uring or IOCP" in proc.stdout
