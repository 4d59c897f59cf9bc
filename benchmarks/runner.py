"""One measurement at a time: start a pinned server or worker, stop it, read its JSON.

The runner knows nothing of the catalogue: how a case is measured is its
*kind*, a function ``measure(runner, case, impl, interp) -> dict`` that
``Runner.measure`` looks up in the table it was given (``worker`` and
``import`` are defined here; families add theirs, e.g. ``echo``).  Kinds use
``start_server``, ``stop``, ``tool`` and ``json_line`` and raise ``Failure``
with a reason; the suite records it and goes on.
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import tempfile
import time

from .machine import ROOT, build_tool, child_env, pinning, priority

SERVER_MAX_SECONDS = 180  # a server's own alarm: it ends itself past this
WORKER_TIMEOUT = 300


class Failure(Exception):
    """One measurement failed; the message says why, and the suite goes on."""


class Runner:
    """Runs one measurement at a time; families' kinds call its server and tool helpers."""

    def __init__(self, kinds: dict, nice: int = 0) -> None:
        self.server_pin, self.gen_pin = pinning()
        self.nice = priority(nice)
        self.server_pin = self.nice + self.server_pin
        self.gen_pin = self.nice + self.gen_pin
        self.profile_to = None  # a file: servers install cProfile (on at SIGUSR1) and write it there
        self._tools = {}
        self._kinds = {**BASE_KINDS, **kinds}

    def measure(self, case, impl, interp) -> dict:
        return self._kinds[case.kind](self, case, impl, interp)

    def tool(self, name: str) -> str:
        """The path of a compiled tool (``echoload``, ``echoserver``), built on first use."""
        if name not in self._tools:
            self._tools[name] = str(build_tool(name))
        return self._tools[name]

    def start_server(self, impl, interp, module: str = "benchmarks.servers"):
        """Start ``python -m MODULE IMPL`` pinned; wait for its ``PORT n`` line: (proc, port, stderr file).

        ``impl.interps == ("native",)`` runs the compiled tool named by the impl's ``arg`` instead.

        Raises:
            Failure: the server did not announce a port within 30 s.
        """
        if interp is None:
            cmd = [*self.server_pin, self.tool(impl.name), str(SERVER_MAX_SECONDS)]
        else:
            cmd = [*self.server_pin, interp.path, "-m", module, impl.name, str(SERVER_MAX_SECONDS)]
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
            stop(proc)
            raise Failure(f"server did not start: {tail(errors) or line.decode(errors='replace') or 'no output'}")
        return proc, int(line.split()[1]), errors


def stop(proc, sig: int = signal.SIGTERM, grace: float = 5.0) -> None:
    """Send ``sig`` (SIGTERM), then SIGKILL after ``grace`` seconds; close its stdout."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()


def tail(errors) -> str:
    """The last line written to a stderr temporary file (and close it)."""
    errors.seek(0)
    text = errors.read().decode(errors="replace").strip()
    errors.close()
    return text.splitlines()[-1] if text else ""


def json_line(cmd, timeout) -> dict:
    """Run ``cmd`` and parse the last line of its stdout as JSON.

    Raises:
        Failure: timed out, no JSON, or the JSON holds an ``error``.
    """
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


def _measure_worker(runner: Runner, case, impl, interp) -> dict:
    kwargs = {"impl": impl.name, **case.params}
    cmd = [*runner.server_pin, interp.path, "-m", "benchmarks.worker", case.target, json.dumps(kwargs), str(WORKER_TIMEOUT)]
    return json_line(cmd, WORKER_TIMEOUT + 10)


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


def _measure_import(runner: Runner, case, impl, interp) -> dict:
    cmd = [*runner.server_pin, interp.path, "-c", _IMPORT_SNIPPET.replace("MODULE", impl.name)]
    return json_line(cmd, 60)


BASE_KINDS = {"worker": _measure_worker, "import": _measure_import}
