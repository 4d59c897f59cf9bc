"""Shared pieces of the fiber-scheduler tests: the backend fixture and a runner (conftest guards against hangs)."""

from __future__ import annotations

import time

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


def fill_send_buffer(sock) -> None:
    """Make ``sock`` (non-blocking from here) unwritable: send until it stays full.

    Where the stack moves data to the peer after ``send`` returns (Wine's
    winsock), a buffer that just refused more can have room again a moment
    later, so it is tried once more after a pause.
    """
    sock.setblocking(False)
    while True:
        try:
            while True:
                sock.send(b"x" * 65536)
        except BlockingIOError:
            pass
        time.sleep(0.05)
        try:
            sock.send(b"x" * 65536)
        except BlockingIOError:
            return
