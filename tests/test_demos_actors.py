"""The actor and callback demos run as real programs and print what they should."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys

from fiber_helpers import backend  # noqa: F401 (fixtures)

DEMOS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demos")


def _run_demo(name: str, *args: str, backend: str) -> str:
    env = dict(os.environ, POORIO_BACKEND=backend)
    done = subprocess.run(
        [sys.executable, os.path.join(DEMOS, name), *args], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def _primes_below(limit: int) -> int:
    sieve = bytearray([1]) * limit
    sieve[:2] = b"\x00\x00"
    for n in range(2, int(limit**0.5) + 1):
        if sieve[n]:
            sieve[n * n :: n] = bytearray(len(range(n * n, limit, n)))
    return sum(sieve)


def test_actors_demo(backend):
    lines = _run_demo("actors.py", "20000", backend=backend).splitlines()
    assert lines[0] == "Hello World"
    found = re.fullmatch(r"(\d+) primes below 20000, counted by (\d+) process actors in [\d.]+ s", lines[1])
    assert found, lines
    assert int(found.group(1)) == _primes_below(20000) == 2262
    cores = int(found.group(2))
    assert cores == (os.cpu_count() or 1)
    jobs = [int(n) for n in re.findall(r"\d+", lines[2])]
    assert len(jobs) == cores and sum(jobs) >= cores  # every actor took its share of the jobs


def test_callbacks_demo(backend):
    lines = _run_demo("callbacks.py", backend=backend).splitlines()
    digest = hashlib.sha256(b"poorio" * 100_000).hexdigest()[:16]
    with open(os.path.join(DEMOS, "callbacks.py"), "rb") as demo:
        length = len(demo.read().splitlines())
    assert lines == [
        f"concurrent.futures: sha256 prefix {digest}",
        "luv-like timer: slept 0.1 s while the ticker ticked on",
        f"luv-like read_file: {length} lines of this demo",
        "luv-like read_file of a missing file: FileNotFoundError (errno 2)",
        "a callback that never comes: timed out after 0.05 s",
    ]
