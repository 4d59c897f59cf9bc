"""Fixtures shared by the event-layer tests: an EventSet per backend that must be left clean, socket pairs."""

from __future__ import annotations

import socket

import pytest

from poorio.events import EventSet
from poorio.platform import backends

BACKENDS = backends()
@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


def assert_clean(events: EventSet) -> None:
    """Nothing held, nothing queued, no fd registered but the wake-up channel."""
    stats = events.statistics()
    assert (stats.events, stats.fds, stats.timers, stats.pending, stats.signals) == (0, 0, 0, 0, 0), stats
    assert events.notifier.statistics().watching == 0


@pytest.fixture
def es(backend):
    """An EventSet on ``backend``; the test must delete what it added."""
    events = EventSet(capacity=64, backend=backend)
    try:
        yield events
        if not events.closed:
            assert_clean(events)
    finally:
        events.close()
    assert events.notifier.closed and events.notifier.waker.closed


@pytest.fixture
def pair():
    """A connected, non-blocking pair of stream sockets."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def drain(events: EventSet, block=False) -> list:
    """One iteration as (id, reason, missed) triples, read at delivery time."""
    return [(ev.id, ev.reason, ev.missed) for ev in events(block)]
