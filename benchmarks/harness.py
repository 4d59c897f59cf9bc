"""The runner: find interpreters, build the C tools, run every case interleaved, summarise.

Each measurement is a subprocess of its own -- a worker, a server, or a bare
interpreter -- started with ``PYTHONPATH`` at the project root, so the
poorio being measured is this checkout's and no installed copy.  Servers and
workers are pinned to CPU 0 and the load generator to CPU 1 with ``taskset``
when the machine has it and two cores.  Repetitions are interleaved:
round 1 runs every (case, impl, interpreter) once, then round 2 does the
same, so slow drift of the machine hits every implementation alike.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .cases import CASES, Case, Impl, all_requirements

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
HOST = "127.0.0.1"
SERVER_MAX_SECONDS = 120  # a server's own alarm: it ends itself past this
WORKER_TIMEOUT = 300


# -- interpreters --------------------------------------------------------------------


class Interp:
    """One interpreter to measure on: its name ('cpython', 'pypy'), path and probed facts."""

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path
        self.version = ""
        self.packages = {}  # peer name -> version
        self.missing = {}  # requirement -> why it is not satisfied

    def probe(self, requirements) -> str | None:
        """Ask the interpreter what it is and which requirements it meets; None or an error."""
        try:
            out = subprocess.run(
                [self.path, "-c", _PROBE, json.dumps(list(requirements))],
                capture_output=True, text=True, timeout=120, cwd=ROOT, env=child_env(),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        if out.returncode != 0:
            return (out.stderr.strip().splitlines() or ["failed"])[-1]
        facts = json.loads(out.stdout.strip().splitlines()[-1])
        self.version = facts["version"]
        self.name = "pypy" if self.version.startswith("PyPy") else "cpython"  # what it is, not what it was called
        self.packages = facts["packages"]
        self.missing = facts["missing"]
        return None

    def why_not(self, impl: Impl) -> str | None:
        """Why ``impl`` cannot run on this interpreter, or None."""
        if self.name not in impl.interps:
            return f"{impl.id} does not exist for {self.name}"
        missing = [f"{req} ({self.missing[req]})" for req in impl.requires if req in self.missing]
        return "missing " + ", ".join(missing) if missing else None


_PROBE = r"""
import importlib, json, platform, sys
import asyncio, selectors  # also fills the bytecode cache (see child_env) before any timing
missing = {}
for req in json.loads(sys.argv[1]):
    module, _, attr = req.partition(":")
    try:
        obj = importlib.import_module(module)
        if attr:
            getattr(obj, attr)
    except Exception as exc:
        missing[req] = type(exc).__name__ + ": " + str(exc)
packages = {}
for name in ("trio", "uvloop"):
    try:
        packages[name] = importlib.import_module(name).__version__
    except Exception:
        pass
version = platform.python_implementation() + " " + platform.python_version()
if platform.python_implementation() == "PyPy":
    version += " (PyPy %d.%d.%d)" % sys.pypy_version_info[:3]
print(json.dumps({"version": version, "packages": packages, "missing": missing}))
"""


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYTHONDEVMODE", None)
    env.pop("PYTHONTRACEMALLOC", None)
    # Import times are measured as an installed package would see them: with
    # bytecode cached (pip compiles it on install; the stdlib ships it).  A
    # PYTHONDONTWRITEBYTECODE in the environment would make every poorio
    # import compile from source.  The cache goes under benchmarks/out/, not
    # into the source tree; the interpreter probe fills it before any timing.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(BENCH / "out" / "pycache")
    return env


def default_interpreters(cpython: str | None, pypy: str | None, no_pypy: bool) -> list:
    """The interpreters to measure on: flags, then environment, then the usual places."""
    found = []
    cpython = cpython or os.environ.get("POORIO_BENCH_CPYTHON")
    if not cpython:
        venv = ROOT / ".venv-bench-cpython" / "bin" / "python"
        if venv.exists():
            cpython = str(venv)
        elif platform.python_implementation() == "CPython":
            cpython = sys.executable
        else:
            cpython = shutil.which("python3") or ""
    if cpython:
        found.append(Interp("cpython", cpython))
    if not no_pypy:
        pypy = pypy or os.environ.get("POORIO_BENCH_PYPY")
        if not pypy:
            venv = ROOT / ".venv-bench-pypy" / "bin" / "python"
            pypy = str(venv) if venv.exists() else (shutil.which("pypy3") or "")
        if pypy:
            found.append(Interp("pypy", pypy))
    return found


# -- the compiled tools ------------------------------------------------------------------


def build_tool(name: str) -> Path:
    """Compile ``benchmarks/<name>.c`` with ``cc -O2`` unless the binary is newer."""
    source, binary = BENCH / f"{name}.c", BENCH / name
    if binary.exists() and binary.stat().st_mtime >= source.stat().st_mtime:
        return binary
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise RuntimeError(f"no C compiler (cc) to build {source.name}")
    out = subprocess.run([cc, "-O2", "-o", str(binary), str(source)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"building {source.name} failed:\n{out.stderr}")
    return binary


# -- CPU pinning and /proc facts ------------------------------------------------------------


def pinning() -> tuple:
    """(server prefix, load-generator prefix): taskset to CPU 0 and CPU 1, when possible."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        cpus = []
    taskset = shutil.which("taskset")
    if taskset and len(cpus) >= 2:
        return [taskset, "-c", str(cpus[0])], [taskset, "-c", str(cpus[1])]
    return [], []


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux /proc)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def background_cpu(seconds: float = 0.2) -> float:
    """How busy the machine is while the suite itself is idle: % of one CPU (0-100 x nproc)."""

    def sample():
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return -1.0
    span = total1 - total0
    ncpu = os.cpu_count() or 1
    return 100.0 * ncpu * (span - (idle1 - idle0)) / span if span > 0 else 0.0


def cpu_check() -> float:
    """Milliseconds for a fixed pure-Python loop in this process (best of 5): how fast the CPU is now.

    Compare it between runs: a run whose figure is much larger ran on a
    slower or contended machine (e.g. a VM whose host is busy -- which no
    load figure inside the VM shows).
    """
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        sum(range(1_000_000))
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def wait_for_quiet(limit: float, threshold: float, say) -> float:
    """Wait up to ``limit`` seconds for background CPU below ``threshold`` %; return the last reading."""
    deadline = time.monotonic() + limit
    busy = background_cpu()
    announced = False
    while busy > threshold and time.monotonic() < deadline:
        if not announced:
            say(f"    machine busy ({busy:.0f}% of a CPU used by other processes): waiting up to {limit:.0f} s")
            announced = True
        time.sleep(1.0)
        busy = background_cpu()
    return busy


# -- executing one measurement -------------------------------------------------------------


class Failure(Exception):
    """One measurement failed; the message says why, and the suite goes on."""


def priority(nice: int) -> list:
    """A ``nice -n N`` prefix (N < 0 needs root), or nothing for 0 or without ``nice``."""
    tool = shutil.which("nice")
    return [tool, "-n", str(nice)] if nice and tool else []


class Runner:
    def __init__(self, quick: bool, nice: int = 0) -> None:
        self.quick = quick
        self.server_pin, self.gen_pin = pinning()
        self.nice = priority(nice)
        self.server_pin = self.nice + self.server_pin
        self.gen_pin = self.nice + self.gen_pin
        self.echoload = None
        self.echoserver = None
        self.profile_to = None  # a file: servers run under cProfile and write their stats there

    def params(self, case: Case) -> dict:
        return case.params_for(self.quick)

    def measure(self, case: Case, impl: Impl, interp: Interp | None) -> dict:
        kind = case.kind
        if kind == "worker":
            return self._worker(case, impl, interp)
        if kind == "echo":
            return self._echo(case, impl, interp)
        if kind == "idle":
            return self._idle(case, impl, interp)
        if kind == "import":
            return self._import(impl, interp)
        raise ValueError(kind)

    # workers and bare imports

    def _worker(self, case, impl, interp) -> dict:
        kwargs = {"impl": impl.name, **self.params(case)}
        cmd = [*self.server_pin, interp.path, "-m", "benchmarks.worker", case.target, json.dumps(kwargs), str(WORKER_TIMEOUT)]
        return _json_line(cmd, WORKER_TIMEOUT + 10)

    def _import(self, impl, interp) -> dict:
        cmd = [*self.server_pin, interp.path, "-c", _IMPORT_SNIPPET.replace("MODULE", impl.name)]
        return _json_line(cmd, 60)

    # servers

    def _start_server(self, impl: Impl, interp: Interp | None):
        if impl.id == "c-epoll":
            if self.echoserver is None:
                self.echoserver = build_tool("echoserver")
            cmd = [*self.server_pin, str(self.echoserver), str(SERVER_MAX_SECONDS)]
        else:
            cmd = [*self.server_pin, interp.path, "-m", "benchmarks.servers", impl.name, str(SERVER_MAX_SECONDS)]
        errors = tempfile.TemporaryFile()
        env = child_env()
        if self.profile_to:
            env["POORIO_BENCH_PROFILE"] = self.profile_to
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, cwd=ROOT, env=env)
        deadline = time.monotonic() + 30
        line = b""
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                line = proc.stdout.readline()
                break
        if not line.startswith(b"PORT "):
            _stop(proc)
            raise Failure(f"server did not start: {_tail(errors) or line.decode(errors='replace') or 'no output'}")
        return proc, int(line.split()[1]), errors

    def _echo(self, case, impl, interp) -> dict:
        if self.echoload is None:
            self.echoload = build_tool("echoload")
        p = self.params(case)
        if interp is not None and interp.name == "pypy":
            p["warmup"] = p.get("warmup_pypy", p["warmup"])
        proc, port, errors = self._start_server(impl, interp)
        try:
            cmd = [
                *self.gen_pin, str(self.echoload), "-h", HOST, "-p", str(port), "-c", str(p["conns"]),
                "-s", str(p["size"]), "-d", str(p["duration"]), "-w", str(p["warmup"]), "-t", "20",
            ]
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=p["duration"] + p["warmup"] + 40)
            cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        except subprocess.TimeoutExpired:
            raise Failure("load generator timed out") from None
        finally:
            _stop(proc)
        lines = out.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if lines else {"error": out.stderr.strip() or "no output"}
        if result.get("round_trips") == 0:
            raise Failure(
                f"not one round trip completed in {p['warmup'] + p['duration']:g} s "
                f"(warm-up + measurement): the server answers too slowly; server: {_tail(errors) or 'no message'}"
            )
        if out.returncode != 0 or "error" in result:
            gen_errors = out.stderr.strip().splitlines()
            why = result.get("error") or (gen_errors[-1] if gen_errors else f"exit status {out.returncode}")
            raise Failure(f"echoload: {why}; server: {_tail(errors) or 'no message'}")
        errors.close()
        return {
            "rt_per_s": result["rt_per_s"],
            "mb_per_s": result["bytes_per_s"] / 1e6,
            "p50_us": result["latency_us"]["p50"],
            "p99_us": result["latency_us"]["p99"],
            "gen_cpu_pct": result["cpu_pct"],
            # over the whole echoload run, connect and warm-up included
            "server_cpu_pct": 100.0 * (cpu1 - cpu0) / (t1 - t0),
        }

    def _idle(self, case, impl, interp) -> dict:
        n = self.params(case)["conns"]
        _raise_fd_limit(n + 64)
        proc, port, errors = self._start_server(impl, interp)
        socks = []
        try:
            time.sleep(0.3)
            before = rss_bytes(proc.pid)
            for _ in range(n):
                sock = socket.create_connection((HOST, port), timeout=20)
                socks.append(sock)
            for sock in socks:  # one round trip each: every handler exists and ran
                sock.sendall(b"x")
            for sock in socks:
                if sock.recv(1) != b"x":
                    raise Failure("idle connection: bad echo")
            time.sleep(0.3)
            after = rss_bytes(proc.pid)
        except OSError as exc:
            raise Failure(f"idle connections: {exc}; server: {_tail(errors) or 'no message'}") from None
        finally:
            for sock in socks:
                sock.close()
            _stop(proc)
        errors.close()
        return {
            "conn_rss_mb": (after - before) / 2**20,
            "kb_per_conn": (after - before) / 1024 / n,
            "total_rss_mb": after / 2**20,
        }


_IMPORT_SNIPPET = r"""
import os, time
def rss():
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
r0 = rss(); t0 = time.perf_counter()
import MODULE
t1 = time.perf_counter(); r1 = rss()
print('{"import_ms": %f, "rss_mb": %f}' % ((t1 - t0) * 1e3, (r1 - r0) / 2**20))
"""


def _json_line(cmd, timeout) -> dict:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=child_env())
    except subprocess.TimeoutExpired:
        raise Failure(f"timed out after {timeout} s") from None
    lines = out.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        err = out.stderr.strip().splitlines()
        raise Failure(err[-1] if err else f"exit status {out.returncode}, no output") from None
    if "error" in result:
        raise Failure(result["error"])
    return result


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()


def _tail(errors) -> str:
    errors.seek(0)
    text = errors.read().decode(errors="replace").strip()
    errors.close()
    return text.splitlines()[-1] if text else ""


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)) if hard > 0 else needed, hard))


# -- the whole run -------------------------------------------------------------------------


def select_cases(only) -> list:
    if not only:
        return list(CASES)
    chosen = [c for c in CASES if any(c.id == o or c.id.startswith(o + "-") or c.scenario == o for o in only)]
    if not chosen:
        raise SystemExit(f"no case matches {only}; cases: {', '.join(c.id for c in CASES)}")
    return chosen


def plan(cases, interps, impl_filter, say) -> tuple:
    """[(case, impl, interp-or-None)] to run, and the skipped ones with reasons."""
    todo, skipped = [], []
    for case in cases:
        for impl in case.impls:
            if impl_filter and not any(f in impl.id for f in impl_filter):
                continue
            if impl.interps == ("native",):
                todo.append((case, impl, None))
                continue
            for interp in interps:
                if interp.name not in impl.interps:
                    continue
                why = interp.why_not(impl)
                if why:
                    skipped.append((case, impl, interp, why))
                else:
                    todo.append((case, impl, interp))
    for case, impl, interp, why in skipped:
        say(f"skip {case.id:<16} {impl.id:<20} {interp.name:<8} {why}")
    return todo, skipped


QUIET_THRESHOLD = 25.0  # % of one CPU used by others, above which a measurement is "disturbed"


def run_all(cases, interps, reps: int, quick: bool, impl_filter, say, quiet_wait: float = 0.0, nice: int = 0) -> dict:
    for interp in list(interps):
        err = interp.probe(all_requirements())
        if err:
            say(f"skip interpreter {interp.name} ({interp.path}): {err}")
            interps.remove(interp)
        else:
            say(f"interpreter {interp.name}: {interp.path} -- {interp.version} {interp.packages}")
    todo, skipped = plan(cases, interps, impl_filter, say)
    runner = Runner(quick, nice)
    if nice:
        say(f"servers, workers and the load generator run under nice -n {nice}")
    if not runner.server_pin:
        say("note: no taskset or fewer than 2 CPUs: server and load generator are not pinned")
    results = []
    cpu_before = cpu_check()
    say(f"CPU check: sum(range(10**6)) takes {cpu_before:.1f} ms here now")
    started = time.monotonic()
    for rnd in range(reps):
        for case, impl, interp in todo:
            if quick and case.quick_reps and rnd >= case.quick_reps:
                continue
            where = interp.name if interp else "native"
            record = {"case": case.id, "impl": impl.id, "interp": where, "round": rnd}
            if quiet_wait > 0:
                record["bg_cpu_pct"] = wait_for_quiet(quiet_wait, QUIET_THRESHOLD, say)
            else:
                record["bg_cpu_pct"] = background_cpu(0.05)
            try:
                record["metrics"] = runner.measure(case, impl, interp)
                m = case.metric
                say(f"[{rnd + 1}/{reps} {time.monotonic() - started:5.0f}s] {case.id:<16} {impl.id:<20} {where:<7} "
                    f"{format(record['metrics'][m.key], m.fmt)} {m.label}  (others: {record['bg_cpu_pct']:.0f}% CPU)")
            except (Failure, RuntimeError) as exc:
                record["error"] = str(exc)
                say(f"[{rnd + 1}/{reps}] {case.id:<16} {impl.id:<20} {where:<7} FAILED: {exc}")
            results.append(record)
    return {
        "results": results,
        "skipped": [
            {"case": c.id, "impl": i.id, "interp": it.name, "why": why} for c, i, it, why in skipped
        ],
        "interps": {i.name: {"path": i.path, "version": i.version, "packages": i.packages} for i in interps},
        "pinned": bool(runner.server_pin[len(runner.nice):]),
        "nice": nice,
        "seconds": time.monotonic() - started,
        "cpu_check_ms": (cpu_before, cpu_check()),
    }


def disturbed(record: dict) -> bool:
    """Whether other processes used more than QUIET_THRESHOLD % of a CPU just before this measurement."""
    return record.get("bg_cpu_pct", 0.0) > QUIET_THRESHOLD


def summarise(cases, run: dict) -> dict:
    """Per case: rows of (impl, interp) with median, min and max of each metric, and ratios.

    A row's statistics use only its *quiet* repetitions (other processes
    below ``QUIET_THRESHOLD`` just before it) when it has any, else all of
    them; ``row["quiet"]`` and ``row["runs"]`` count them for the report.
    """
    summary = {}
    for case in cases:
        rows = {}
        for rec in run["results"]:
            if rec["case"] != case.id:
                continue
            row = rows.setdefault((rec["impl"], rec["interp"]), {"records": [], "errors": []})
            if "error" in rec:
                row["errors"].append(rec["error"])
            else:
                row["records"].append(rec)
        for row in rows.values():
            quiet = [rec for rec in row["records"] if not disturbed(rec)]
            used = quiet or row["records"]
            row["runs"], row["quiet"] = len(row["records"]), len(quiet)
            row["values"] = {}
            for rec in used:
                for key, value in rec["metrics"].items():
                    if isinstance(value, (int, float)):
                        row["values"].setdefault(key, []).append(value)
            row["stats"] = {
                key: (statistics.median(vals), min(vals), max(vals)) for key, vals in row["values"].items()
            }
        key = case.metric.key

        def ratio_to(base_row, row):
            if not base_row or key not in base_row["stats"] or key not in row["stats"]:
                return None
            base, med = base_row["stats"][key][0], row["stats"][key][0]
            if not base or not med:
                return None
            return med / base if case.metric.better == "higher" else base / med

        base_cpython = rows.get((case.baseline, "cpython"))
        for (impl, interp), row in rows.items():
            row["ratio"] = ratio_to(base_cpython, row)
            row["ratio_same"] = ratio_to(rows.get((case.baseline, interp)), row)
        summary[case.id] = rows
    return summary
