"""The fiber demos (hello, sleepsort, op_with_timeout) run as real programs and print what they should."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from fiber_helpers import backend  # noqa: F401 (fixtures)

DEMOS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demos")


def _run_demo(name: str, *args: str, backend: str) -> str:
    env = dict(os.environ, POORIO_BACKEND=backend)
    done = subprocess.run(
        [sys.executable, os.path.join(DEMOS, name), *args],
        capture_output=True,
        text=True,
        timeout=20,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def test_hello(backend):
    assert _run_demo("hello.py", backend=backend) == "Hello World\n"


# The demo sleeps each fiber until one shared start plus n / 100 s, so a stall
# while the fibers start cannot reorder them.  Every pair given out of order
# here is 10 apart (100 ms) all the same, so a stall during the wake-ups, a
# different hazard, would have to outlast that.  (The empty case runs the
# demo's own list, whose 2 comes before 1.)
@pytest.mark.parametrize("numbers", [[], ["40", "0", "20", "1", "30", "2"]])
def test_sleepsort(backend, numbers):
    out = _run_demo("sleepsort.py", *numbers, backend=backend)
    expected = sorted(int(n) for n in numbers) if numbers else [1, 2, 8, 38, 39, 42, 111]
    assert [int(line) for line in out.split()] == expected


def test_op_with_timeout(backend):
    out = _run_demo("op_with_timeout.py", "0.2", backend=backend).splitlines()
    assert re.fullmatch(r"Listening on 127\.0\.0\.1:\d+", out[0])
    assert out[1:] == [
        "two fibers: no connection within 0.2s",
        "two fibers: accepted a connection",
        "fail_after: no connection within 0.2s",
    ]
