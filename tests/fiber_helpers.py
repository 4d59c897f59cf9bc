"""Shared pieces of the fiber-scheduler tests: the backend fixture and a runner (conftest guards against hangs)."""

from __future__ import annotations

import pytest

from poorio.platform import backends
from poorio import Scheduler


@pytest.fixture(params=backends())
def backend(request):
    """Each test that takes it runs once per backend usable here."""
    return request.param


def assert_clean(scheduler) -> None:
    """Nothing waited on, no timer armed, no fiber alive (fds kept registered for streams may stay)."""
    stats = scheduler.statistics()
    assert (stats.events, stats.timers, stats.fibers) == (0, 0, 0), stats


def run(main, *args, backend=None, capacity=64):
    """Run ``main(*args)`` on a fresh scheduler; then check it left nothing behind (also after an error)."""
    with Scheduler(backend, capacity) as scheduler:
        try:
            return scheduler.run(main, *args)
        finally:
            assert_clean(scheduler)
