"""The TCP echo family: every server against the compiled load generator, in steady state.

One measurement is one fresh server process, pinned to a CPU of its own,
and two runs of ``echoload`` pinned to another:

1. **priming** on connections of its own: ping-pong until the rate is
   stable (``steady.PRIME_MIN_S`` .. ``PRIME_MAX_S``; longer minimum on PyPy),
   then those connections close.  This is what cures asyncio's slow start.
2. **the window** on fresh connections: a warm-up until stable again, then
   ``steady.WINDOW_S`` measured in two halves, with the server's CPU use
   and the whole machine's read from ``/proc`` at its start, middle and end.

The metrics keep what the report needs to judge the row (``halves``,
``warmup_stable``, ``prime_stable``, ``others_cpu_pct``) and the priming
curve (``prime_series``: the rate of every half-second slice), which shows
a slow start where there is one.  The ``idle`` kind (RSS of a server holding
idle connections) lives here too, since it runs the same servers.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time

from . import steady
from .catalogue import BOTH, CPYTHON_ONLY, NATIVE, Case, Family, Impl, Metric
from .runner import Failure, stop, tail
from .machine import raise_fd_limit, rss_bytes

HOST = "127.0.0.1"
CONNECT_TIMEOUT_S = 20

# quick=...: the interpreters a row keeps under --quick (the rows the targets and the table need)
ECHO_IMPLS = (
    Impl("asyncio-streams", quick=CPYTHON_ONLY),
    Impl("asyncio-protocol", quick=BOTH),
    Impl("uvloop-streams", ("uvloop",), CPYTHON_ONLY, quick=CPYTHON_ONLY),
    Impl("uvloop-protocol", ("uvloop",), CPYTHON_ONLY, quick=CPYTHON_ONLY),
    Impl("trio", ("trio",), quick=CPYTHON_ONLY),
    Impl("curio", ("curio",), quick=CPYTHON_ONLY),
    Impl("poorio-fibers", ("poorio:listen_tcp", "poorio:Group"), quick=BOTH,
         note="listen_tcp, accept, read_some/write_all in a Group: the documented API"),
    Impl("poorio-fibers-uring", ("poorio:listen_tcp", "benchmarks.needs_uring"),
         note="the same fibers on the uring backend (sockets stay on readiness: one-shot polls on the ring)"),
    Impl("poorio-fibers-uring-ops", ("poorio.streams:ProactorStream", "benchmarks.needs_uring"),
         note="the same fibers, each socket a ProactorStream: receives and sends as io_uring operations"),
    Impl("poorio-rawfibers", ("poorio:wait_readable", "poorio:Group"), quick=CPYTHON_ONLY,
         note="sock.recv/send, and poorio.wait_readable on EAGAIN: the seeds' YieldForIo pattern"),
    Impl("poorio-events", ("poorio.events:EventSet",), quick=CPYTHON_ONLY, note="event-set callbacks, no fibers"),
    Impl("poorio-aio-streams", ("poorio.aio:new_event_loop",), note="asyncio streams on poorio.aio's loop"),
    Impl("poorio-aio-protocol", ("poorio.aio:new_event_loop",), note="asyncio protocol on poorio.aio's loop"),
    Impl("poorio-pool", ("poorio.platform:new_pool",),
         note="hand-written loop on SocketIoPool (epoll): the platform layer alone"),
    Impl("poorio-pool-poll", ("poorio.platform:new_pool",), note="the same loop on the poll backend"),
    Impl("selectors-loop", note="the same hand-written loop on the stdlib's selectors (epoll)"),
    Impl("c-epoll", interps=NATIVE, arg="echoserver", quick=NATIVE, note="C epoll server: the load generator's ceiling"),
)

IDLE_IMPLS = tuple(i for i in ECHO_IMPLS if i.id in (
    "asyncio-streams", "asyncio-protocol", "uvloop-streams", "trio", "curio",
    "poorio-aio-streams", "poorio-events", "poorio-fibers", "poorio-rawfibers", "poorio-pool", "selectors-loop",
))  # fmt: skip

RT_PER_S = Metric("rt_per_s", "round trips/s", ",.0f")
ECHO_EXTRAS = (
    Metric("mb_per_s", "MB/s", ".1f"),
    Metric("p99_us", "p99 µs", ",.0f", "lower"),
    Metric("server_cpu_pct", "server CPU %", ".0f", "lower"),
    Metric("gen_cpu_pct", "load-gen CPU %", ".0f", "lower"),
    Metric("others_cpu_pct", "others' CPU %", ".0f", "lower"),
    Metric("prime_s", "priming s", ".1f", "lower"),
)


def _echo(conns: int, size: int, label: str, quick: bool) -> Case:
    return Case(
        id=f"echo-{label}",
        scenario="echo",
        title=f"TCP echo, {conns:,} connections × {size // 1024} KiB ping-pong",
        kind="echo",
        impls=ECHO_IMPLS,
        metric=RT_PER_S,
        baseline="asyncio-streams",
        params={"conns": conns, "size": size},
        extras=ECHO_EXTRAS,
        quick=quick,
    )


CASES = (
    _echo(100, 1024, "100x1k", quick=True),
    _echo(1000, 1024, "1000x1k", quick=True),
    _echo(100, 16384, "100x16k", quick=False),
)


def echoload(runner, port: int, conns: int, size: int, warmup: float, max_warmup: float, duration: float,
             server_pid: int | None = None) -> dict:
    """One run of the load generator, pinned; its JSON result.

    Raises:
        Failure: it failed, timed out, or completed no round trip.
    """
    cmd = [
        *runner.gen_pin, runner.tool("echoload"), "-h", HOST, "-p", str(port), "-c", str(conns), "-s", str(size),
        "-w", str(warmup), "-W", str(max_warmup), "-d", str(duration), "-S", str(steady.SLICE_S),
        "-T", str(steady.STABLE_TOLERANCE), "-t", str(CONNECT_TIMEOUT_S),
    ]
    if server_pid:
        cmd += ["-C", str(server_pid)]
    budget = CONNECT_TIMEOUT_S + max_warmup + duration + 30
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=budget)
    except subprocess.TimeoutExpired:
        raise Failure("load generator timed out") from None
    lines = out.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"error": out.stderr.strip() or "no output"}
    if out.returncode != 0 or "error" in result:
        gen_errors = out.stderr.strip().splitlines()
        why = result.get("error") or (gen_errors[-1] if gen_errors else f"exit status {out.returncode}")
        if result.get("round_trips") == 0:
            why = f"not one round trip completed in the window: the server answers too slowly ({why})"
        raise Failure(f"echoload: {why}")
    return result


def prime_and_measure(runner, port: int, server_pid: int, conns: int, size: int, pypy: bool) -> dict:
    """The priming pass, then the window; the window's result with the priming facts added."""
    prime = echoload(runner, port, conns, size, steady.PRIME_MIN_S_PYPY if pypy else steady.PRIME_MIN_S,
                     steady.PRIME_MAX_S, steady.SLICE_S)
    window = echoload(runner, port, conns, size, steady.WARMUP_MIN_S, steady.WARMUP_MAX_S, steady.WINDOW_S,
                      server_pid)
    window["prime"] = prime
    return window


def measure_echo(runner, case, impl, interp) -> dict:
    """One server, primed until stable, then measured for a window in halves."""
    p = case.params
    raise_fd_limit(2 * p["conns"] + 64)
    proc, port, errors = runner.start_server(impl, interp)
    try:
        result = prime_and_measure(runner, port, proc.pid, p["conns"], p["size"],
                                   interp is not None and interp.name == "pypy")
    except Failure as exc:
        raise Failure(f"{exc}; server: {tail(errors) or 'no message'}") from None
    finally:
        stop(proc)
    errors.close()
    prime = result["prime"]
    metrics = {
        "rt_per_s": result["rt_per_s"],
        "mb_per_s": result["bytes_per_s"] / 1e6,
        "p50_us": result["latency_us"]["p50"],
        "p99_us": result["latency_us"]["p99"],
        "gen_cpu_pct": result["cpu_pct"],
        "halves": result["halves"],
        "warmup_s": result["warmup_s"],
        "warmup_stable": result["warmup_stable"],
        "prime_s": prime["warmup_s"],
        "prime_stable": prime["warmup_stable"],
        "prime_series": prime["series"],
        "window_series": result["window_series"],
    }
    if "server_cpu_pct" in result:
        metrics["server_cpu_pct"] = result["server_cpu_pct"]
        metrics["server_cpu_halves"] = result["server_cpu_halves"]
    if "machine_cpu_pct" in result and "server_cpu_pct" in result:
        metrics["others_cpu_pct"] = max(0.0, result["machine_cpu_pct"] - result["server_cpu_pct"] - result["cpu_pct"])
    return metrics


def measure_idle(runner, case, impl, interp) -> dict:
    """The server's RSS growth for ``conns`` idle connections, each after one round trip."""
    n = case.params["conns"]
    raise_fd_limit(2 * n + 64)
    proc, port, errors = runner.start_server(impl, interp)
    socks = []
    try:
        time.sleep(0.3)
        before = rss_bytes(proc.pid)
        for _ in range(n):
            socks.append(socket.create_connection((HOST, port), timeout=20))
        for sock in socks:  # one round trip each: every handler exists and ran
            sock.sendall(b"x")
        for sock in socks:
            if sock.recv(1) != b"x":
                raise Failure("idle connection: bad echo")
        time.sleep(0.3)
        after = rss_bytes(proc.pid)
    except OSError as exc:
        raise Failure(f"idle connections: {exc}; server: {tail(errors) or 'no message'}") from None
    finally:
        for sock in socks:
            sock.close()
        stop(proc)
    errors.close()
    return {
        "conn_rss_mb": (after - before) / 2**20,
        "kb_per_conn": (after - before) / 1024 / n,
        "total_rss_mb": after / 2**20,
    }


FAMILY = Family(
    scenario="echo",
    title="TCP echo",
    cases=CASES,
    kinds={"echo": measure_echo, "idle": measure_idle},
)
