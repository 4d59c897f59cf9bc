"""The event set's clock: one-shot and periodic timers, missed periods, per-event timeouts, 100,000 timers in order."""

from __future__ import annotations

import math
import random
import sys
import time

import pytest

from events_support import backend, drain, es, pair  # noqa: F401 (fixtures)
from poorio.events import REASON_READ, REASON_TIMEOUT


def test_one_shot_timer_never_fires_early(es):
    start = time.monotonic()
    tid = es.add("t", 0.05, "ctx")
    [ev] = list(es())
    now = time.monotonic()
    assert (ev.id, ev.kind, ev.reason, ev.context, ev.missed) == (tid, "t", REASON_TIMEOUT, "ctx", 0)
    assert now >= ev.deadline >= start + 0.05
    assert tid not in es


def test_zero_timer_fires_at_the_next_collection(es):
    tid = es.add("t", 0)
    assert drain(es, False) == [(tid, "timeout", 0)]


def test_periodic_timer_does_not_drift(es):
    period = 0.01
    tid = es.add("T", period)
    first = es.get(tid).deadline
    fired = []  # (deadline set as it fired = the next due time, missed, delivered at)
    for ev in es():
        fired.append((ev.deadline, ev.missed, time.monotonic()))
        if len(fired) == 8:
            es.delete(tid)
        else:
            time.sleep(period * 0.3)  # a slow loop body must not push the schedule back
    skipped = 0
    for n, (deadline, missed, at) in enumerate(fired):
        skipped += missed
        # on the grid first + k * period, never "now + period"
        assert math.isclose(deadline, first + (n + 1 + skipped) * period, rel_tol=0, abs_tol=1e-9)
        assert at >= deadline - period  # never early


def test_periodic_timer_reports_missed_periods_instead_of_a_burst(es):
    period = 0.01
    tid = es.add("T", period)
    first = es.get(tid).deadline
    got = []
    for ev in es():
        got.append((ev.missed, ev.deadline))
        if len(got) == 1:
            time.sleep(period * 5.5)  # fall behind by five and a half periods
        elif len(got) == 3:
            es.delete(tid)
    (m0, d0), (m1, d1), (m2, d2) = got
    # Each delivery moves the deadline along the original grid by 1 + the periods it reports missed.
    assert math.isclose(d0, first + (m0 + 1) * period, abs_tol=1e-9)
    assert math.isclose(d1, d0 + (m1 + 1) * period, abs_tol=1e-9)
    assert math.isclose(d2, d1 + (m2 + 1) * period, abs_tol=1e-9)
    # At least 4.5 periods passed after d0 before the next collection: reported
    # in one delivery, not replayed as a burst of deliveries.
    assert m1 >= 4


def test_100000_timers_fire_in_deadline_order(es):
    rnd = random.Random(20240603)
    ids = [es.add("t", rnd.random() * 0.2, n) for n in range(100_000)]
    cancelled = set(ids[::10])
    for eid in cancelled:
        es.delete(eid)
    last = -math.inf
    delivered = 0
    for ev in es():
        assert ev.deadline >= last
        last = ev.deadline
        delivered += 1
        assert ev.id not in cancelled
    assert delivered == 90_000
    assert time.monotonic() >= last
    assert es.statistics().timers == 0 and len(es) == 0


def test_timers_with_equal_deadlines_fire_in_the_order_added(es):
    ids = [es.add("t", 0) for _ in range(20)]
    assert [eid for eid, _, _ in drain(es)] == ids


def test_deleting_most_timers_compacts_the_heap(es):
    ids = [es.add("t", 30 + n) for n in range(2000)]
    for eid in ids[:-10]:
        es.delete(eid)
    assert len(es.notifier._timers.heap) < 1000  # cancelled entries did not pile up
    assert es.statistics().timers == 10
    for eid in ids[-10:]:
        es.delete(eid)


# -- per-event timeouts ------------------------------------------------------------------


def test_one_shot_read_times_out_and_unregisters(es, pair):
    a, b = pair
    start = time.monotonic()
    rid = es.add("r", b, "ctx", timeout=0.03)
    assert drain(es, None) == [(rid, REASON_TIMEOUT, 0)]
    assert time.monotonic() >= start + 0.03
    assert rid not in es and es.statistics().fds == 0


def test_persistent_timeout_rearms_whenever_it_fires(es, pair):
    a, b = pair
    rid = es.add("R", b, timeout=0.02)
    reasons = []
    for ev in es():
        reasons.append(ev.reason)
        if len(reasons) == 3:
            sent = time.monotonic()
            a.send(b"x")
        elif ev.reason == REASON_READ:
            b.recv(1)
            assert ev.deadline >= sent + 0.02  # re-armed when the read fired, after the send
        elif len(reasons) == 5:
            es.delete(rid)
    assert reasons == ["timeout", "timeout", "timeout", "read", "timeout"]


def test_ready_fd_wins_over_a_timeout_due_in_the_same_collection(es, pair):
    a, b = pair
    a.send(b"x")
    rid = es.add("r", b, timeout=0)
    assert drain(es) == [(rid, REASON_READ, 0)]


def test_virtual_and_signal_events_time_out_too(es):
    import signal

    quiet = signal.SIGBREAK if sys.platform == "win32" else signal.SIGUSR2  # nobody sends it
    vid = es.add("v", None, timeout=0.01)
    sid = es.add("S", quiet, timeout=0.02)
    got = []
    for ev in es():
        got.append((ev.id, ev.reason))
        if len(got) == 2:
            es.delete(sid)
    assert got == [(vid, "timeout"), (sid, "timeout")]


def test_set_changes_context_and_timeout(es, pair):
    a, b = pair
    rid = es.add("r", b, "old", timeout=60)
    assert es.set(rid, context="new") == rid
    assert es.get(rid).context == "new"
    es.set(rid, timeout=0.01)  # counts from now
    [ev] = list(es())
    assert (ev.reason, ev.context) == ("timeout", "new")
    rid = es.add("r", b, timeout=0.01)
    es.set(rid, timeout=None)  # removed: now nothing is pending in time
    assert es.statistics().timers == 0 and es.get(rid).deadline is None
    assert drain(es) == []
    es.delete(rid)


def test_timers_take_no_timeout(es):
    with pytest.raises(ValueError, match="a timer takes no timeout"):
        es.add("t", 1, timeout=2)
    tid = es.add("T", 1)
    with pytest.raises(ValueError, match="a timer takes no timeout"):
        es.set(tid, timeout=2)
    es.set(tid, timeout=None)  # nothing to clear: fine
    es.delete(tid)
