"""Keep benchmarks/bench_files.py from rotting: one short repetition end to end, its section written (no figure judged)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from poorio.platform import backends

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif("uring" not in backends(), reason="io_uring is not usable here")
def test_file_bench_runs_and_writes_its_section(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# results\n\nkept text\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "benchmarks.bench_files", "--reps", "1", "--window", "0.2", "--fibers", "2",
           "--block", "4096", "--results", str(results)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    text = results.read_text(encoding="utf-8")
    assert text.startswith("# results\n\nkept text\n")
    name = "files-pypy" if sys.implementation.name == "pypy" else "files-cpython"
    assert f"<!-- section {name} -->" in text and f"<!-- end of section {name} -->" in text
    for row in ("| sequential, 4,096 B |", "| random, 4,096 B |"):
        assert row in text
