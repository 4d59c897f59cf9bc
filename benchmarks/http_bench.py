"""HTTP servers side by side: one minimal ASGI app on poorio.http, uvicorn and hypercorn, loaded by wrk.

::

    python3 -m benchmarks.http_bench setup     # .venv-http-bench: uvicorn, httptools, uvloop, hypercorn, h11, wsproto
    python3 -m benchmarks.http_bench           # 5 interleaved repetitions (a few minutes)
    python3 -m benchmarks.http_bench --quick   # 2 repetitions, short windows: a sanity run
    python3 -m benchmarks.http_bench --results benchmarks/RESULTS.md   # and publish: RESULTS.md's HTTP section

The servers, each a process of its own serving ``benchmarks.http_app:app``:

``poorio.http``               this checkout's poorio (h11 on fibers)
``uvicorn-h11-asyncio``       the same parser on asyncio: the ratio the issue targets (>= 1.3x)
``uvicorn-httptools-uvloop``  uvicorn's fastest configuration (C parser, libuv loop)
``hypercorn``                 h11 on asyncio, another server design

Method: the server is pinned to CPU 0 and ``wrk`` (one thread, keep-alive,
``--connections`` of them) to CPU 1.  Each server is first warmed up with
1-second wrk windows until two in a row agree within 10% (the JIT of PyPy,
caches, the kernel's socket buffers); then a measurement is two
back-to-back windows of ``--half`` seconds whose rates must agree within
10% -- tried up to three times (``--attempts``), and flagged ``unsteady``
if they never do.  Repetitions are interleaved (every server once, then again, in a
rotated order), so drift of a shared machine hits them alike.  Reported:
the median requests/s and its range, the ratio to uvicorn-h11-asyncio,
and requests per CPU-second of the server (from ``/proc``, children
included) with its ratio too: a busy machine disturbs that far less than
the rate, which a starved wrk caps.  On a machine
shared with other work, ``--nice -20`` (root) puts the servers and wrk
first in line for their CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from . import report

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-http-bench"
PEERS = ["uvicorn", "httptools", "uvloop", "hypercorn", "h11", "wsproto"]
APP = "benchmarks.http_app:app"
BASELINE = "uvicorn-h11-asyncio"
STEADY = 0.10  # two windows agree when they differ by at most this fraction


def _poorio(py: str, port: int) -> list:
    return [py, "-m", "poorio.http", APP, "--port", str(port), "--log-level", "warning", "--lifespan", "off"]


def _uvicorn(http: str, loop: str):
    def command(py: str, port: int) -> list:
        return [py, "-m", "uvicorn", APP, "--port", str(port), "--http", http, "--loop", loop, "--no-access-log",
                "--log-level", "warning", "--lifespan", "off"]  # fmt: skip

    return command


def _hypercorn(py: str, port: int) -> list:
    return [py, "-m", "hypercorn", APP, "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]


SERVERS = {  # name: (command, modules the interpreter must have)
    "poorio.http": (_poorio, ["h11", "wsproto"]),
    "uvicorn-h11-asyncio": (_uvicorn("h11", "asyncio"), ["uvicorn", "h11"]),
    "uvicorn-httptools-uvloop": (_uvicorn("httptools", "uvloop"), ["uvicorn", "httptools", "uvloop"]),
    "hypercorn": (_hypercorn, ["hypercorn"]),
}


# -- one server, one measurement -------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


NICE = []  # ["nice", "-n", N] with --nice: servers and wrk at another priority


def _pin(cpu: int) -> list:
    pin = ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) >= 2 else []
    return NICE + pin


def _stat(pid) -> list:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of ``pid`` and its descendants (hypercorn serves in a child), or NaN."""
    try:
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    parents.setdefault(int(_stat(entry)[1]), []).append(int(entry))
                except (OSError, IndexError, ValueError):
                    pass  # gone meanwhile
        total, todo = 0, [pid]
        while todo:
            current = todo.pop()
            fields = _stat(current)
            total += int(fields[11]) + int(fields[12])
            todo.extend(parents.get(current, ()))
        return total / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _wait_ready(port: int, proc: subprocess.Popen, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), 1) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
                if sock.recv(1024).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the server did not answer within 20 s")


def wrk(port: int, seconds: int, connections: int) -> dict:
    """One wrk window: requests/s, requests, errors."""
    cmd = [*_pin(1), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rate is None:
        raise RuntimeError(f"no rate in wrk's output:\n{out}")
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rate": float(rate.group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "errors": (errors.group(1) if errors else "") + (f" non-2xx {non2xx.group(1)}" if non2xx else ""),
    }


def _agree(a: float, b: float) -> bool:
    return abs(a - b) <= STEADY * max(a, b)


def measure(name: str, py: str, args) -> dict:
    """Start ``name`` on ``py``, warm it up to a steady rate, measure one window; stop it."""
    command, _ = SERVERS[name]
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([*_pin(0), *command(py, port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _wait_ready(port, proc)
        previous = None
        for warm in range(args.max_warmup):
            rate = wrk(port, args.warmup, args.connections)["rate"]
            if previous is not None and _agree(previous, rate):
                break
            previous = rate
        result = None
        for attempt in range(args.attempts):
            cpu0 = _cpu_seconds(proc.pid)
            first = wrk(port, args.half, args.connections)
            second = wrk(port, args.half, args.connections)
            cpu = _cpu_seconds(proc.pid) - cpu0
            requests = first["requests"] + second["requests"]
            result = {
                "rate": (first["rate"] + second["rate"]) / 2,
                "halves": [first["rate"], second["rate"]],
                "steady": _agree(first["rate"], second["rate"]),
                "per_cpu_second": requests / cpu if cpu > 0 else float("nan"),
                "errors": (first["errors"] + " " + second["errors"]).strip(),
                "warmup_windows": warm + 1,
                "attempts": attempt + 1,
            }
            if result["steady"]:
                break
        return result
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


# -- the run ---------------------------------------------------------------------------


def _has(py: str, modules: list) -> str | None:
    """Why ``py`` cannot run a server needing ``modules`` (None: it can)."""
    code = "import importlib.util, sys; print(','.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([py, "-c", code, *modules], capture_output=True, text=True, env=env)
    return (out.stdout.strip() or None) if out.returncode == 0 else (out.stderr.strip() or "a broken interpreter")


def run(args) -> dict:
    py = args.python or (str(VENV / "bin" / "python") if (VENV / "bin" / "python").exists() else sys.executable)
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    names = [n for n in SERVERS if not args.only or any(word in n for word in args.only)]
    runnable = []
    for name in names:
        missing = _has(py, SERVERS[name][1])
        if missing:
            print(f"skipping {name}: {py} lacks {missing} (python3 -m benchmarks.http_bench setup)")
        else:
            runnable.append(name)
    version = subprocess.run([py, "-c", "import sys; print(sys.version.split()[0], sys.implementation.name)"],
                             capture_output=True, text=True).stdout.strip()  # fmt: skip
    pinned = "taskset" in _pin(0)
    print(f"{py} ({version}); wrk -t1 -c{args.connections}; server on CPU 0, wrk on CPU 1"
          f"{'' if pinned else ' (NOT pinned: no taskset or one CPU)'}{f'; nice {args.nice}' if NICE else ''};"
          f" load average {os.getloadavg()[0]:.2f}")
    results = {name: [] for name in runnable}
    for rep in range(args.reps):
        order = runnable[rep % len(runnable):] + runnable[: rep % len(runnable)]
        for name in order:
            outcome = measure(name, py, args)
            results[name].append(outcome)
            print(f"  rep {rep + 1}/{args.reps} {name:26s} {outcome['rate']:9.0f} req/s  halves "
                  f"{outcome['halves'][0]:.0f}/{outcome['halves'][1]:.0f}{'' if outcome['steady'] else ' UNSTEADY'}"
                  f"  {outcome['per_cpu_second']:.0f} req/CPU-s  {outcome['errors']}", flush=True)
    return {"python": py, "version": version, "connections": args.connections, "half": args.half,
            "load_average_after": os.getloadavg()[0], "results": results}  # fmt: skip


def table(run_data: dict) -> str:
    """The results as a Markdown table: medians, ranges, ratios."""
    results = run_data["results"]
    medians = {name: statistics.median(r["rate"] for r in rows) for name, rows in results.items() if rows}
    per_cpu = {name: statistics.median(r["per_cpu_second"] for r in rows) for name, rows in results.items() if rows}
    base = medians.get(BASELINE)
    base_cpu = per_cpu.get(BASELINE)
    fastest_uvicorn = max((v for k, v in medians.items() if k.startswith("uvicorn")), default=None)
    lines = [
        "| server | req/s (median) | min–max | × uvicorn-h11-asyncio | × fastest uvicorn | req per server CPU-s | "
        "× uvicorn-h11-asyncio per CPU-s | unsteady |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in results.items():
        if not rows:
            continue
        rates = [r["rate"] for r in rows]
        ratio = f"{medians[name] / base:.2f}×" if base else "–"
        fast = f"{medians[name] / fastest_uvicorn:.2f}×" if fastest_uvicorn else "–"
        cpu_ratio = f"{per_cpu[name] / base_cpu:.2f}×" if base_cpu else "–"
        unsteady = sum(not r["steady"] for r in rows)
        lines.append(f"| {name} | {medians[name]:.0f} | {min(rates):.0f}–{max(rates):.0f} | {ratio} | {fast} | "
                     f"{per_cpu[name]:.0f} | {cpu_ratio} | {unsteady}/{len(rows)} |")  # fmt: skip
    return "\n".join(lines)


def setup() -> None:
    """Make ``.venv-http-bench`` with the peers (and h11/wsproto for poorio.http)."""
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", *PEERS], check=True)
    print(f"{VENV}: {', '.join(PEERS)}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.http_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", choices=("run", "setup"), default="run")
    parser.add_argument("--quick", action="store_true", help="2 repetitions of 2 s halves: a sanity run")
    parser.add_argument("--reps", type=int, help="interleaved repetitions (default 5; --quick 2)")
    parser.add_argument("--half", type=int, help="whole seconds in each half of a measurement (default 5; --quick 2)")
    parser.add_argument("--warmup", type=int, default=1, help="whole seconds per warm-up window (default 1)")
    parser.add_argument("--max-warmup", type=int, default=10, help="warm-up windows at most (default 10)")
    parser.add_argument("--attempts", type=int, default=3, help="tries at a steady measurement (default 3)")
    parser.add_argument("--connections", type=int, default=64, help="wrk's keep-alive connections (default 64)")
    parser.add_argument("--only", nargs="*", help="servers whose name contains one of these words")
    parser.add_argument("--python", help=f"the interpreter (default: {VENV.name}'s, else this one)")
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument("--nice", type=int, help="run servers and wrk at this niceness (-20: first in line; root only)")
    parser.add_argument("--results", help="put the table into this RESULTS.md as its HTTP section (kept when the "
                                          "suite rewrites the file)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.command == "setup":
        setup()
        return
    if args.nice is not None:
        NICE[:] = ["nice", "-n", str(args.nice)]
    args.reps = args.reps or (2 if args.quick else 5)
    args.half = args.half or (2 if args.quick else 5)
    if args.half < 1 or args.warmup < 1:
        parser.error("wrk measures whole seconds: --half and --warmup must be at least 1")
    data = run(args)
    print()
    print(table(data))
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=1))
    if args.results:
        report.replace_section(Path(args.results), "http", section(data, argv))


def section(run_data: dict, argv) -> str:
    """The HTTP section of RESULTS.md: what was run, where, and the table."""
    command = " ".join(["python3 -m benchmarks.http_bench", *(sys.argv[1:] if argv is None else argv)])
    unsteady = sum(not r["steady"] for rows in run_data["results"].values() for r in rows)
    return "\n".join([
        "## HTTP: one minimal ASGI app, loaded by wrk (issue 17)",
        "",
        f"- **Date:** {report.now()}",
        f"- **Command:** `{command}`",
        f"- **Interpreter:** {run_data['version']} ({run_data['python']}); {_peer_versions(run_data['python'])}",
        f"- **Load:** wrk, one thread, {run_data['connections']} keep-alive connections, pinned to CPU 1; each "
        f"server pinned to CPU 0, warmed until two 1 s windows agree, then two {run_data['half']} s windows "
        f"that must agree within {STEADY:.0%} ({unsteady} unsteady); poorio at commit {report.git_commit()}",
        "",
        "The target (issue 17) is poorio.http ≥ 1.3× uvicorn-h11-asyncio: the same parser, so the ratio "
        "measures the IO stack under it.",
        "",
        table(run_data),
    ])


def _peer_versions(py: str) -> str:
    code = ("import importlib.metadata as m, sys\n"
            "for n in sys.argv[1:]:\n"
            "    try: print(n, m.version(n))\n"
            "    except m.PackageNotFoundError: pass")  # fmt: skip
    out = subprocess.run([py, "-c", code, *PEERS], capture_output=True, text=True).stdout.split("\n")
    return ", ".join(line for line in out if line) or "no peers installed"


if __name__ == "__main__":
    main()
