"""Keep benchmarks/http_bench.py from rotting: poorio.http alone, one short repetition, untimed.

It checks that the benchmark starts a server, loads it with wrk and prints
its table -- never how fast anything was (figures belong to the benchmark).
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from http_support import ROOT, python_env


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_http_bench_runs_and_prints_its_table():
    cmd = [sys.executable, "-m", "benchmarks.http_bench", "--only", "poorio", "--python", sys.executable,
           "--reps", "1", "--half", "1", "--warmup", "1", "--max-warmup", "1", "--attempts", "1",
           "--connections", "4"]  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, env=python_env())
    assert out.returncode == 0, out.stdout + out.stderr
    row = [line for line in out.stdout.splitlines() if line.startswith("| poorio.http |")]
    assert len(row) == 1 and float(row[0].split("|")[2]) > 0, out.stdout
