"""The machine the suite runs on: interpreters, the compiled tools, CPU pinning and /proc facts.

Nothing here measures anything; it finds what a measurement runs on
(``Interp``: an interpreter probed for the peers it has), builds the C tools
(``echoload``, ``echoserver``) and reads what the kernel says about a process
or the whole machine.  Linux only (``/proc``); every function that reads
``/proc`` says so.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


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

    def why_not(self, impl) -> str | None:
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
for name in ("trio", "uvloop", "curio"):
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
    """Compile ``benchmarks/<name>.c`` with ``cc -O2`` unless the binary is newer.

    The binary goes beside its source, or into the temporary directory when
    the checkout is read-only (as the matrix's chroots mount it).
    """
    source = BENCH / f"{name}.c"
    where = BENCH if os.access(BENCH, os.W_OK) else Path(tempfile.gettempdir()) / f"poorio-bench-{os.getuid()}"
    where.mkdir(exist_ok=True)
    binary = where / name
    if binary.exists() and binary.stat().st_mtime >= source.stat().st_mtime:
        return binary
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise RuntimeError(f"no C compiler (cc) to build {source.name}")
    building = binary.with_name(f"{name}.building-{os.getpid()}")  # two runs at once never see half a binary
    out = subprocess.run([cc, "-O2", "-o", str(building), str(source)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"building {source.name} failed:\n{out.stderr}")
    os.replace(building, binary)
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


def busy_seconds() -> float | None:
    """CPU seconds every process on the machine used so far, all cores (Linux /proc/stat), or None.

    Busy is user + nice + system + irq + softirq + steal: all but idle and
    iowait, as echoload counts it.
    """
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class OthersCpu:
    """Other processes' CPU use during a block of this process's work: % of one core.

    ``with OthersCpu() as watch: ...`` then ``watch.pct`` (None without
    /proc): the machine's busy time over the block minus this process's own.
    """

    pct = None

    def __enter__(self):
        self._t, self._own, self._busy = time.monotonic(), time.process_time(), busy_seconds()
        return self

    def __exit__(self, *exc):
        busy = busy_seconds()
        span = time.monotonic() - self._t
        if busy is not None and self._busy is not None and span > 0:
            own = time.process_time() - self._own
            self.pct = max(0.0, 100.0 * (busy - self._busy - own) / span)
        return False


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


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)) if hard > 0 else needed, hard))


def priority(nice: int) -> list:
    """A ``nice -n N`` prefix (N < 0 needs root), or nothing for 0 or without ``nice``."""
    tool = shutil.which("nice")
    return [tool, "-n", str(nice)] if nice and tool else []
