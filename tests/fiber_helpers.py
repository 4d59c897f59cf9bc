"""Shared pieces of the fiber-scheduler tests: the backend fixture, a hang guard, a runner."""

from __future__ import annotations

import faulthandler
import sys

import pytest

from poorio.platform import backends
from poorio.scheduler import Scheduler

HANG_SECONDS = 20  # a hung run dumps every thread's stack and ends its process


@pytest.fixture(params=backends())
def backend(request):
    """Each test that takes it runs once per backend usable here."""
    return request.param


@pytest.fixture(autouse=True)
def hang_guard():
    """A test that hangs fails after ``HANG_SECONDS`` (twice that for long ones) with a traceback of where it hung."""
    faulthandler.dump_traceback_later(2 * HANG_SECONDS, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


def assert_clean(scheduler) -> None:
    """Nothing registered, no timer armed, no fiber alive."""
    stats = scheduler._events.statistics()
    assert (stats.events, stats.fds, stats.timers) == (0, 0, 0), stats
    assert not scheduler._fibers, scheduler.dump()


def run(main, *args, backend=None, capacity=64, lazy_fds=False):
    """Run ``main(*args)`` on a fresh scheduler; then check it left nothing behind (also after an error)."""
    with Scheduler(backend, capacity, lazy_fds=lazy_fds) as scheduler:
        try:
            return scheduler.run(main, *args)
        finally:
            assert_clean(scheduler)
