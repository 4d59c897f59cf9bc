"""Keep the benchmark suite from rotting, in seconds, without timing anything.

* The whole command line end to end on the cheapest case (pool growth with
  10 idle fds, poorio's pools, one repetition): the report, the plot and
  the raw results are written, with the steadiness columns and the targets.
* The load generator against the real ``poorio-fibers`` echo server, with
  the server stopped (SIGSTOP) for most of the window's second half: the
  halves check must see it and the summary must flag the row.  This is the
  check that keeps a disturbed window from being published.
* The steady-state helpers on made-up rates: when a warm-up counts as
  stable, when halves agree, and the slice-at-a-time helpers a family
  driving an outside tool (wrk) uses.

Never how fast anything was: figures belong in the suite's steady-state runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import harness, steady  # noqa: E402
from benchmarks.cases import CASES  # noqa: E402
from benchmarks.machine import build_tool, child_env  # noqa: E402


def test_pool_case_runs_and_reports(tmp_path):
    cmd = [
        sys.executable, "-m", "benchmarks", "run", "--only", "pool-10", "--impl", "poorio-epoll",
        "--reps", "1", "--no-pypy", "--cpython", sys.executable, "--out", str(tmp_path),
    ]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, env=child_env())
    assert out.returncode == 0, out.stdout + out.stderr
    report = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    assert "### pool cycle with 10 idle fds and one active" in report
    assert "| halves | used/runs |" in report
    assert "## Targets (issue 15)" in report
    assert (tmp_path / "results.svg").read_text(encoding="utf-8").startswith("<svg")
    run = json.loads((tmp_path / "results.json").read_text())["run"]
    measured = [r for r in run["results"] if "metrics" in r]
    assert [r["impl"] for r in measured] == ["poorio-epoll"], run["results"]
    metrics = measured[0]["metrics"]
    assert metrics["us_per_cycle"] > 0
    assert len(metrics["halves"]) == 2 and min(metrics["halves"]) > 0


@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="needs a C compiler for echoload")
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="echoload reads /proc")
def test_stalled_window_is_flagged():
    echoload = build_tool("echoload")
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.servers", "poorio-fibers", "30"],
        stdout=subprocess.PIPE, cwd=ROOT, env=child_env(),
    )
    try:
        port = int(server.stdout.readline().split()[1])
        # a fixed 0.3 s warm-up, then a 1 s window: its second half is 0.8 .. 1.3 s after the start
        load = subprocess.Popen(
            [str(echoload), "-p", str(port), "-c", "10", "-w", "0.3", "-d", "1.0", "-S", "0.1", "-C", str(server.pid)],
            stdout=subprocess.PIPE, text=True,
        )

        def stall():
            time.sleep(0.85)
            os.kill(server.pid, signal.SIGSTOP)
            time.sleep(0.4)
            os.kill(server.pid, signal.SIGCONT)

        staller = threading.Thread(target=stall)
        staller.start()
        out, _ = load.communicate(timeout=30)
        staller.join()
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGCONT)
            server.terminate()
        server.wait(10)
        server.stdout.close()
    assert load.returncode == 0, out
    result = json.loads(out.strip().splitlines()[-1])
    first, second = result["halves"]
    assert first > 0 and second < first, result
    assert not steady.halves_agree(result["halves"])
    assert result["round_trips"] <= result["total_round_trips"]
    assert 0 <= result["server_cpu_pct"] <= 200 and "machine_cpu_pct" in result
    assert len(result["window_series"]) >= 9  # 0.1 s slices of a 1 s window

    case = next(c for c in CASES if c.id == "echo-100x1k")
    record = {"case": case.id, "impl": "poorio-fibers", "interp": "cpython", "round": 0, "bg_cpu_pct": 0.0,
              "metrics": {"rt_per_s": result["rt_per_s"], "halves": result["halves"]}}
    row = harness.summarise([case], {"results": [record]})[case.id][("poorio-fibers", "cpython")]
    assert any(flag.startswith("halves differ") for flag in row["flags"]), row["flags"]
    assert row["used"] == 0


def test_steadiness_rules():
    assert steady.stable([50.0, 100.0, 101.0, 99.0])
    assert not steady.stable([100.0, 101.0])  # too few slices to judge
    assert not steady.stable([40.0, 80.0, 120.0])  # a slow start still climbing
    assert steady.halves_agree([100.0, 109.0])
    assert not steady.halves_agree([100.0, 80.0])
    seconds = iter([0.02, 0.015, 0.010, 0.010, 0.010, 0.5, 0.5])  # rates 5k, 6.7k, then 10k: stable at pass 5
    w = steady.worker_window(lambda k: next(seconds), 1000, 100)
    assert w["warm_passes"] == 5 and w["warm_stable"]
    assert w["halves"] == [1000.0, 1000.0] and w["rate"] == 1000.0


def test_slice_tool_helpers():
    """What a family driving an outside load tool one slice at a time (wrk -d 0.5s) relies on."""
    slices = iter([10.0, 50.0, 100.0, 101.0, 100.0, 99.0])
    asked = []

    def load(seconds):
        asked.append(seconds)
        return next(slices)

    w = steady.warm_until_stable(load, min_s=0.0, max_s=60.0)
    assert w["stable"] and w["rates"] == [10.0, 50.0, 100.0, 101.0, 100.0]
    assert set(asked) == {steady.SLICE_S}
    cold = steady.warm_until_stable(lambda s: 1.0, min_s=0.0, max_s=0.0)  # out of time before 3 slices
    assert not cold["stable"] and cold["rates"] == [1.0]
    asked.clear()
    window = steady.window_in_halves(lambda s: asked.append(s) or (80.0 if len(asked) == 1 else 120.0))
    assert asked == [steady.WINDOW_S / 2] * 2
    assert window == {"rate": 100.0, "halves": [80.0, 120.0]} and not steady.halves_agree(window["halves"])
