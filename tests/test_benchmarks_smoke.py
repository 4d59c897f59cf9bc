"""Keep the benchmark harness from rotting: one tiny case end to end, untimed.

Runs ``python -m benchmarks run`` for the pool-growth case with 10 idle fds
on this interpreter's poorio epoll/poll pool, one repetition, writing into a
temporary directory.  It checks that the run produced its report and plot --
never how fast anything was (timings belong in the benchmark suite, not in
tests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_pool_case_runs_and_reports(tmp_path):
    cmd = [
        sys.executable, "-m", "benchmarks", "run", "--quick", "--only", "pool-10",
        "--impl", "poorio-", "--reps", "1", "--no-pypy", "--cpython", sys.executable, "--out", str(tmp_path),
    ]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    report = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    assert "pool cycle with 10 idle fds" in report
    assert "poorio-epoll" in report or "poorio-poll" in report
    assert (tmp_path / "results.svg").read_text(encoding="utf-8").startswith("<svg")
    run = json.loads((tmp_path / "results.json").read_text())["run"]
    measured = [r for r in run["results"] if "metrics" in r]
    assert measured, run["results"]
    assert all(r["metrics"]["us_per_cycle"] > 0 for r in measured)
