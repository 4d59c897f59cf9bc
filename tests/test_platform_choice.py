"""The platform layer's choices and conversions: which backend, and a timeout in kernel terms."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import poorio.platform as platform
from poorio.errors import BackendUnavailableError
from poorio.platform import PoolStatistics, new_pool
from poorio.platform._base import timeout_ms

CAPACITY = 8
PATIENCE = 20.0  # for a child interpreter to start, even a slow PyPy on a busy machine


@pytest.mark.parametrize(
    "seconds, ms",
    [
        (None, -1),
        (0, 0),
        (-5, 0),
        (0.0000001, 1),
        (0.001, 1),
        (0.0011, 2),
        (1.5, 1500),
        (float("inf"), -1),
        (10.0**12, 2**31 - 1),
    ],
)
def test_timeout_ms_rounds_up_and_clamps(seconds, ms):
    assert timeout_ms(seconds) == ms


def test_timeout_ms_rejects_nan():
    with pytest.raises(ValueError):
        timeout_ms(float("nan"))


def test_backends_are_known_and_ranked():
    usable = platform.backends()
    assert usable, "no backend works here"
    ranked = platform.known_backends()
    assert usable == [name for name in ranked if name in usable]
    assert platform.default_backend() in usable
    if os.environ.get("POORIO_BACKEND"):
        assert platform.default_backend() == os.environ["POORIO_BACKEND"]


def test_default_pool_uses_the_default_backend():
    with platform.SocketIoPool() as pool:
        assert pool.statistics() == PoolStatistics(platform.default_backend(), platform.DEFAULT_CAPACITY, 0)


def test_unknown_backend_names_the_known_ones():
    with pytest.raises(BackendUnavailableError) as caught:
        platform.backend_module("no-such-mechanism")
    assert all(name in str(caught.value) for name in platform.known_backends())


def test_unusable_backend_names_the_usable_ones():
    unusable = [name for name in platform.known_backends() if name not in platform.backends()]
    if not unusable:
        pytest.skip("every backend poorio knows works here")
    with pytest.raises(BackendUnavailableError) as caught:
        new_pool(CAPACITY, unusable[0])
    assert all(name in str(caught.value) for name in platform.backends())


def _choice_in_child(forced: str) -> subprocess.CompletedProcess:
    probe = "import poorio.platform as p\nwith p.SocketIoPool(4) as pool:\n    print(pool.statistics().backend)\n"
    env = dict(os.environ, POORIO_BACKEND=forced)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=PATIENCE
    )


@pytest.mark.parametrize("forced", platform.known_backends())
def test_poorio_backend_forces_a_backend(forced):
    child = _choice_in_child(forced)
    if forced in platform.backends():
        assert child.returncode == 0, child.stderr
        assert child.stdout.strip() == forced
    else:
        assert child.returncode != 0 and "BackendUnavailableError" in child.stderr


def test_poorio_backend_names_the_choices_when_wrong():
    child = _choice_in_child("no-such-mechanism")
    assert child.returncode != 0
    assert "BackendUnavailableError" in child.stderr
    assert all(name in child.stderr for name in platform.known_backends())


def test_polls_pipes_says_whether_a_pool_can_wait_on_a_pipe():
    from poorio.platform import READABLE, facts

    r, w = os.pipe()
    try:
        os.write(w, b"x")
        with new_pool(CAPACITY) as pool:
            try:
                pool.add(r, READABLE)
                seen = pool.cycle(0)
            except OSError:  # WSAPoll: not a socket
                seen = None
            if r in pool:
                pool.remove(r)
    finally:
        os.close(r)
        os.close(w)
    assert (seen == [(r, READABLE)]) is facts.POLLS_PIPES
