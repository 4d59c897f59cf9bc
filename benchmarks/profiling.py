"""Diagnostics of one echo server: where its round trip goes (``profile``), and its slow start (``slowstart``).

``python -m benchmarks slowstart`` measures a fresh server the way the old
quick mode did (0.4 s warm-up, 0.6 s window), then the same process the way
the suite does now (priming until stable, a window in halves), and prints
both with the priming curve: the evidence for ``steady``'s durations.

``python -m benchmarks profile echo``:

Three looks at one server (``poorio-fibers`` unless ``--impl`` says
otherwise), each after the same priming the suite uses, so none of them
sees a slow start:

1. **Unprofiled**: the steady rate, and the server's CPU time per round trip
   (its CPU share in the window divided by the rate).
2. **Syscalls**: ``perf stat`` (task clock, context switches, every syscall
   entry) attached to the warm server for one run of the load generator, and
   ``strace -c`` (calls per syscall) for another, each divided by the round
   trips of that run.  Skipped, with a line saying so, where the tool is
   missing or not permitted.  strace slows the server a lot; only its counts
   are used.
3. **cProfile**: a fresh server whose profiler is switched on (SIGUSR1)
   only after priming, for one window; the top functions by ``--sort``.

The output is plain text meant to be pasted into an issue's note, before
and after a change.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time

from . import steady
from .echo_bench import CASES as ECHO_CASES
from .echo_bench import ECHO_IMPLS, echoload, prime_and_measure
from .harness import kinds
from .runner import Failure, Runner, stop, tail

PERF_EVENTS = ("task-clock", "context-switches", "raw_syscalls:sys_enter")


def _attached(tool_cmd, run_load):
    """Run ``tool_cmd`` (attached to a pid) around ``run_load()``; stop it with SIGINT: (load result, its stderr)."""
    with tempfile.TemporaryFile() as err:
        tool = subprocess.Popen(tool_cmd, stdout=subprocess.DEVNULL, stderr=err)
        time.sleep(0.5)  # let it attach before the load starts
        try:
            if tool.poll() is not None:
                err.seek(0)
                raise Failure(err.read().decode(errors="replace").strip().splitlines()[-1:] or "exited")
            result = run_load()
        finally:
            stop(tool, signal.SIGINT, 20)  # perf and strace print their counts on SIGINT
        err.seek(0)
        return result, err.read().decode(errors="replace")


def _perf_counts(text: str) -> dict:
    """``perf stat -x,`` output -> {event: value} (events it could not count are left out)."""
    counts = {}
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2] in PERF_EVENTS:
            try:
                counts[fields[2]] = float(fields[0])
            except ValueError:
                pass  # "<not supported>" / "<not counted>"
    return counts


def _strace_counts(text: str) -> dict:
    """``strace -c`` summary -> {syscall: calls}."""
    counts = {}
    rows = False
    for line in text.splitlines():
        if line.startswith("------"):
            rows = True
            continue
        parts = line.split()
        if not rows or len(parts) < 5 or parts[-1] == "total":
            continue
        try:
            counts[parts[-1]] = int(parts[3])
        except ValueError:
            continue
    return counts


def _python_server(say, interp, impl_id: str):
    """The echo server ``impl_id`` if it runs on ``interp``, else None (and say why)."""
    impl = next((i for i in ECHO_IMPLS if i.id == impl_id), None)
    if impl is None or impl.interps == ("native",):
        say(f"no echo server {impl_id!r}; servers: {', '.join(i.id for i in ECHO_IMPLS if i.interps != ('native',))}")
        return None
    why = interp.probe(impl.requires) or interp.why_not(impl)
    if why:
        say(f"cannot run {impl_id} on {interp.path}: {why}")
        return None
    return impl


def profile_echo(say, interp, impl_id: str, conns: int, size: int, seconds: float, top: int, sort: str) -> int:
    """Print the three looks (see the module docstring); 0, or 2 for an unknown impl."""
    import pstats

    impl = _python_server(say, interp, impl_id)
    if impl is None:
        return 2
    runner = Runner(kinds())
    pypy = interp.name == "pypy"
    say(f"{impl_id}, echo {conns:,} connections x {size:,} B, on {interp.version} ({interp.path})")
    say(f"each look primes the server until stable (>= {steady.PRIME_MIN_S_PYPY if pypy else steady.PRIME_MIN_S:g} s)")

    proc, port, errors = runner.start_server(impl, interp)
    try:
        r = prime_and_measure(runner, port, proc.pid, conns, size, pypy)
        say("")
        say("== 1. unprofiled, steady state")
        say(f"rate {r['rt_per_s']:,.0f} round trips/s (halves {r['halves'][0]:,.0f} / {r['halves'][1]:,.0f}), "
            f"p99 {r['latency_us']['p99']:,.0f} us, priming took {r['prime']['warmup_s']:.1f} s")
        if "server_cpu_pct" in r:
            us = 1e6 * r["server_cpu_pct"] / 100 / r["rt_per_s"]
            say(f"server CPU {r['server_cpu_pct']:.0f}% of a core -> {us:.2f} us of server CPU per round trip; "
                f"load generator {r['cpu_pct']:.0f}%")
        say("")
        say("== 2. syscalls per round trip (the same warm server)")

        def load():
            return echoload(runner, port, conns, size, 0.5, 0.5, seconds)

        if shutil.which("perf"):
            cmd = ["perf", "stat", "-x,", "-e", ",".join(PERF_EVENTS), "-p", str(proc.pid)]
            try:
                res, text = _attached(cmd, load)
                counts, n = _perf_counts(text), res["total_round_trips"]
                if not counts:
                    say(f"perf stat counted nothing: {text.strip().splitlines()[-1:] or 'no output'}")
                say(f"perf stat over {n:,} round trips at {res['rt_per_s']:,.0f}/s:")
                for event, total in counts.items():
                    if event == "task-clock":  # perf reports it in ms
                        say(f"    {'server CPU (task-clock)':<24} {total:>12,.1f} ms = {total * 1e3 / n:8.3f} us per round trip")
                    else:
                        say(f"    {event:<24} {total:>12,.0f}    = {total / n:8.3f} per round trip")
            except Failure as exc:
                say(f"perf stat could not run: {exc}")
        else:
            say("perf not installed: no syscall count from perf stat")
        if shutil.which("strace"):
            try:
                res, text = _attached(["strace", "-c", "-f", "-p", str(proc.pid)], load)
                counts, n = _strace_counts(text), res["total_round_trips"]
                say(f"strace -c ({n:,} round trips; strace slows the server to {res['rt_per_s']:,.0f}/s, counts only):")
                for name, calls in sorted(counts.items(), key=lambda kv: -kv[1])[:12]:
                    say(f"    {name:<20} {calls / n:8.3f} per round trip")
                say(f"    {'all syscalls':<20} {sum(counts.values()) / n:8.3f} per round trip")
            except Failure as exc:
                say(f"strace could not run: {exc}")
        else:
            say("strace not installed: no per-syscall counts")
    except Failure as exc:
        say(f"failed: {exc}; server: {tail(errors) or 'no message'}")
        return 1
    finally:
        stop(proc)

    with tempfile.TemporaryDirectory() as tmp:
        runner.profile_to = os.path.join(tmp, "server.prof")
        proc, port, errors = runner.start_server(impl, interp)
        try:
            echoload(runner, port, conns, size, steady.PRIME_MIN_S_PYPY if pypy else steady.PRIME_MIN_S,
                     steady.PRIME_MAX_S, steady.SLICE_S)
            proc.send_signal(signal.SIGUSR1)  # the profiler starts now, warm
            res = echoload(runner, port, conns, size, 0.5, 0.5, seconds)
        except Failure as exc:
            say(f"failed under cProfile: {exc}; server: {tail(errors) or 'no message'}")
            return 1
        finally:
            stop(proc)
        say("")
        say(f"== 3. cProfile of the warm server for {seconds:g} s "
            f"(under the profiler: {res['rt_per_s']:,.0f} round trips/s), top {top} by {sort}")
        if not os.path.exists(runner.profile_to):
            say("the server wrote no profile")
            return 1
        stats = pstats.Stats(runner.profile_to)
        total_rt = res["total_round_trips"]
        say(f"{stats.total_calls / total_rt:.1f} Python function calls per round trip")
        stats.sort_stats(sort).print_stats(top)
    return 0


OLD_QUICK_WARMUP_S, OLD_QUICK_WINDOW_S = 0.4, 0.6  # what --quick used to measure


def slow_start(say, interp, impl_id: str, conns: int, size: int, reps: int) -> int:
    """Fresh server measured the old quick way, then the same process in steady state; ``reps`` times."""
    impl = _python_server(say, interp, impl_id)
    if impl is None:
        return 2
    runner = Runner(kinds())
    say(f"{impl_id}, echo {conns:,} x {size:,} B, on {interp.version}")
    for rep in range(reps):
        proc, port, errors = runner.start_server(impl, interp)
        try:
            old = echoload(runner, port, conns, size, OLD_QUICK_WARMUP_S, OLD_QUICK_WARMUP_S, OLD_QUICK_WINDOW_S,
                           proc.pid)
            new = prime_and_measure(runner, port, proc.pid, conns, size, interp.name == "pypy")
        except Failure as exc:
            say(f"failed: {exc}; server: {tail(errors) or 'no message'}")
            return 1
        finally:
            stop(proc)
        curve = ", ".join(f"{r / 1e3:.0f}k" for r in new["prime"]["series"][:12])
        say(f"run {rep + 1}: fresh server, {OLD_QUICK_WARMUP_S:g} s + {OLD_QUICK_WINDOW_S:g} s: "
            f"{old['rt_per_s']:,.0f}/s (server CPU {old.get('server_cpu_pct', -1):.0f}%); same process primed "
            f"{new['prime']['warmup_s']:.1f} s, then {steady.WINDOW_S:g} s: {new['rt_per_s']:,.0f}/s (halves "
            f"{steady.spread(*new['halves']):.0%} apart, server CPU {new.get('server_cpu_pct', -1):.0f}%, others "
            f"{max(0.0, new.get('machine_cpu_pct', 0) - new.get('server_cpu_pct', 0) - new['cpu_pct']):.0f}%): "
            f"{new['rt_per_s'] / old['rt_per_s']:.2f}x")
        say(f"       priming curve, 0.5 s slices: {curve}")
    return 0


def echo_case_params(name: str) -> dict:
    """conns and size of an echo case id (``echo-1000x1k``), or of the 100 x 1 KiB case for ``echo``."""
    case = next((c for c in ECHO_CASES if c.id == name), ECHO_CASES[0])
    return dict(case.params)
