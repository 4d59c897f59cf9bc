"""The event set: every kind and lifetime, fd registrations, iteration modes, loop-body calls, errors, introspection."""

from __future__ import annotations

import errno
import math
import os
import socket
import sys
import time

import pytest

from backend_support import closed_fd_errno, skip_unless_pipes
from events_support import assert_clean, backend, drain, es, pair  # noqa: F401 (fixtures)
from poorio.errors import AlreadyRegisteredError, ClosedResourceError, NotRegisteredError, PoolFullError
from poorio.events import (
    KINDS,
    READ,
    READ_PERSISTENT,
    REASON_READ,
    REASON_TRIGGERED,
    REASON_WRITE,
    VIRTUAL,
    VIRTUAL_PERSISTENT,
    WRITE,
    WRITE_PERSISTENT,
    EventRecord,
    EventSet,
    EventStatistics,
)
from poorio.platform import READABLE, WRITABLE


def test_kind_constants_are_the_spec_letters():
    assert KINDS == "vVtTrRwWsS"
    assert (VIRTUAL, VIRTUAL_PERSISTENT, READ, READ_PERSISTENT, WRITE, WRITE_PERSISTENT) == tuple("vVrRwW")


# -- virtual events and once ---------------------------------------------------------


def test_one_shot_virtual_fires_once_when_triggered(es):
    vid = es.add("v", None, "ctx")
    assert drain(es) == []  # untriggered: nothing
    assert es.trigger(vid) == vid
    assert es.trigger(vid) == vid  # again before delivery: still delivered once
    [ev] = list(es(False))
    assert (ev.id, ev.kind, ev.reason, ev.context, ev.missed) == (vid, "v", REASON_TRIGGERED, "ctx", 0)
    assert vid not in es and len(es) == 0
    assert es.delete(vid) is None


def test_virtual_source_is_the_initial_state(es):
    on = es.add("v", True, "on")
    off = es.add("v", 0, "off")
    assert drain(es) == [(on, "triggered", 0)]
    assert es.delete(off) == off


def test_persistent_virtual_retriggers_until_deleted(es):
    vid = es.add("V")
    for _ in range(3):
        es.trigger(vid)
        es.trigger(vid)
        assert drain(es) == [(vid, "triggered", 0)]
        assert drain(es) == []
    assert vid in es
    assert es.delete(vid) == vid


def test_once_delivers_its_context_once(es):
    ids = [es.once(n) for n in range(3)]
    assert [(ev.id, ev.kind, ev.reason, ev.context) for ev in es(False)] == [
        (eid, "v", "triggered", n) for n, eid in enumerate(ids)
    ]
    assert len(es) == 0


def test_ids_are_ints_never_reused(es):
    seen = []
    for _ in range(50):
        eid = es.add("V")
        seen.append(eid)
        es.delete(eid)
    assert all(type(eid) is int for eid in seen)
    assert seen == sorted(set(seen))


# -- fd events ------------------------------------------------------------------------


def test_one_shot_read_fires_when_readable_and_unregisters(es, pair):
    a, b = pair
    rid = es.add("r", b, "reader")
    assert es.notifier.interest(b.fileno()) == READABLE
    assert drain(es) == []
    a.send(b"x")
    [ev] = list(es(False))
    assert (ev.id, ev.kind, ev.reason, ev.source, ev.context) == (rid, "r", REASON_READ, b, "reader")
    assert b.recv(1) == b"x"
    assert es.statistics().fds == 0 and es.notifier.interest(b.fileno()) == 0


def test_persistent_read_is_level_triggered_until_deleted(es, pair):
    a, b = pair
    rid = es.add("R", b.fileno())
    a.send(b"xy")
    assert drain(es) == [(rid, "read", 0)]
    assert drain(es) == [(rid, "read", 0)]  # still readable: reported again
    b.recv(2)
    assert drain(es) == []
    assert es.delete(rid) == rid
    assert es.statistics().fds == 0


def test_write_events_one_shot_and_persistent(es, pair):
    a, b = pair
    wid = es.add("w", a)
    assert drain(es) == [(wid, REASON_WRITE, 0)]
    assert es.statistics().fds == 0
    wid = es.add("W", a)
    assert drain(es) == [(wid, REASON_WRITE, 0)]
    assert drain(es) == [(wid, REASON_WRITE, 0)]
    es.delete(wid)


def test_read_and_write_on_one_fd_share_one_registration(es, pair):
    a, b = pair
    rid = es.add("R", b)
    wid = es.add("W", b)
    assert es.statistics().fds == 1 and es.notifier.interest(b.fileno()) == READABLE | WRITABLE
    a.send(b"x")
    assert sorted(drain(es)) == sorted([(rid, "read", 0), (wid, "write", 0)])
    es.delete(rid)
    assert es.notifier.interest(b.fileno()) == WRITABLE
    es.add("r", b)
    assert es.notifier.interest(b.fileno()) == READABLE | WRITABLE
    es.delete(wid)
    assert es.notifier.interest(b.fileno()) == READABLE
    es.forget_fd(b)
    assert es.statistics().fds == 0


def test_raw_pipe_fds(es, backend):
    skip_unless_pipes(backend)
    r, w = os.pipe()
    try:
        rid, wid = es.add("r", r), es.add("w", w)
        assert drain(es) == [(wid, "write", 0)]
        os.write(w, b"z")
        assert drain(es) == [(rid, "read", 0)]
    finally:
        os.close(r)
        os.close(w)


def test_hangup_wakes_reader_and_writer(es, pair):
    a, b = pair
    fill = b"x" * 65536
    try:
        while True:
            b.send(fill)  # fill b's send buffer so only the hang-up can make it writable
    except BlockingIOError:
        pass
    rid, wid = es.add("r", b), es.add("w", b)
    a.close()
    got = sorted(drain(es))
    assert got == sorted([(rid, "read", 0), (wid, "write", 0)])
    with pytest.raises(OSError) as info:  # the retried syscall tells the real story
        b.send(b"x")
    assert info.value.errno in (errno.EPIPE, errno.ECONNRESET)


def test_same_fd_same_direction_twice_is_an_error(es, pair):
    a, b = pair
    rid = es.add("r", b)
    for kind in ("r", "R"):
        with pytest.raises(AlreadyRegisteredError, match=f"fd {b.fileno()} already has a read event.*id {rid}"):
            es.add(kind, b)
    wid = es.add("W", b)
    with pytest.raises(AlreadyRegisteredError, match="write event"):
        es.add("w", b.fileno())
    es.delete(rid)
    es.delete(wid)


def test_bad_fds_are_refused_and_leave_nothing_behind(es, backend):
    with pytest.raises(ValueError, match="-1"):
        es.add("r", -1)
    with pytest.raises(ValueError, match="'nope'"):
        es.add("w", "nope")
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as info:
        es.add("r", r)
    assert info.value.errno == closed_fd_errno(backend)  # the kernel's error, unmodified
    assert len(es) == 0


def test_capacity_counts_fds_not_events(backend):
    socks = [socket.socketpair() for _ in range(2)]
    try:
        with EventSet(capacity=2, backend=backend) as es:
            es.add("r", socks[0][0])
            es.add("w", socks[0][0])  # same fd: no new slot
            es.add("r", socks[1][0])
            with pytest.raises(PoolFullError, match="capacity of 2"):
                es.add("r", socks[1][1])
            assert es.forget_fd(socks[0][0]) != []
            es.add("r", socks[1][1])
            es.clear()
            assert_clean(es)
    finally:
        for a, b in socks:
            a.close()
            b.close()


def test_forget_fd_returns_the_events_and_drops_the_fd_now(es, pair):
    a, b = pair
    rid, wid = es.add("R", b, "r-owner"), es.add("w", b, "w-owner")
    other = es.add("r", a)
    gone = es.forget_fd(b)
    assert sorted((ev.id, ev.context) for ev in gone) == [(rid, "r-owner"), (wid, "w-owner")]
    assert es.notifier.interest(b.fileno()) == 0 and rid not in es and wid not in es
    assert es.forget_fd(b) == []
    b.send(b"x")
    assert drain(es) == [(other, "read", 0)]


def test_delete_after_user_closed_the_fd(es):
    a, b = socket.socketpair()
    rid, wid = es.add("R", b), es.add("W", b)
    b.close()  # wrong order, but delete must still clean up
    a.close()
    assert es.delete(rid) == rid
    assert es.delete(wid) == wid


# -- iteration modes --------------------------------------------------------------------


def test_false_never_blocks_and_none_blocks_only_for_timers(es, pair):
    a, b = pair
    rid = es.add("R", b)
    assert drain(es, False) == []  # a hang here is caught by the guard
    assert drain(es, None) == []  # no timer: no blocking either
    tid = es.add("t", 0.02)
    start = time.monotonic()
    assert drain(es, None) == [(tid, "timeout", 0)]
    assert time.monotonic() - start >= 0.02
    es.delete(rid)


def test_number_blocks_up_to_that_long_for_one_collection(es, pair):
    a, b = pair
    rid = es.add("r", b)
    start = time.monotonic()
    assert drain(es, 0.05) == []
    assert time.monotonic() - start >= 0.05  # never early
    a.send(b"x")
    assert drain(es, math.inf) == [(rid, "read", 0)]


def test_true_on_an_empty_set_returns(es):
    assert drain(es, True) == []


def test_true_keeps_collecting_until_stopped(es):
    vid = es.add("V", True)
    seen = []
    for ev in es(True):
        seen.append(ev.id)
        if len(seen) < 3:
            es.trigger(vid)  # delivered by the next collection of this same loop
        else:
            es.stop()
    assert seen == [vid, vid, vid]
    es.delete(vid)


def test_invalid_block_values_are_named(es):
    with pytest.raises(ValueError, match="-1"):
        es(-1)
    with pytest.raises(ValueError, match="nan"):
        es(float("nan"))
    with pytest.raises(TypeError, match="'soon'"):
        es("soon")


# -- calling methods from inside the loop ---------------------------------------------


def test_stop_inside_the_loop_keeps_the_rest_pending(es):
    ids = [es.once(n) for n in range(4)]
    got = []
    for ev in es(True):
        got.append(ev.id)
        if len(got) == 2:
            es.stop()
    assert got == ids[:2]
    assert es.statistics().pending == 2
    assert [ev.id for ev in es(False)] == ids[2:]


def test_stop_outside_a_loop_does_not_stop_the_next_one(es):
    es.stop()
    eid = es.once()
    assert drain(es) == [(eid, "triggered", 0)]


def test_clear_inside_the_loop_drops_everything(es, pair):
    a, b = pair
    ids = [es.once(n) for n in range(3)]
    es.add("R", b)
    es.add("t", 0.01)
    a.send(b"x")
    got = [ev.id for ev in es(True) if ev.id == ids[0] and es.clear() is None]
    assert got == [ids[0]]
    assert len(es) == 0 and es.statistics().fds == 0


def test_delete_inside_the_loop_cancels_a_collected_event(es, pair):
    a, b = pair
    first = es.once()
    rid = es.add("r", b)
    a.send(b"x")
    got = []
    for ev in es(False):
        got.append(ev.id)
        if ev.id == first:
            assert es.delete(rid) == rid  # already collected, not yet delivered
    assert got == [first]
    assert es.statistics().fds == 0


def test_close_inside_the_loop_ends_it(backend):
    es = EventSet(backend=backend)
    ids = [es.once() for _ in range(3)]
    got = []
    for ev in es(True):
        got.append(ev.id)
        es.close()
    assert got == ids[:1]
    assert es.closed


def test_triggered_in_the_loop_waits_for_the_next_collection(es):
    vid = es.add("V", True)
    for _ in range(3):
        got = []
        for ev in es(False):
            got.append(ev.id)
            es.trigger(vid)  # a self-retriggering event cannot make es(False) spin
        assert got == [vid]
    es.delete(vid)


def test_trigger_errors(es, pair):
    a, b = pair
    rid = es.add("R", b)
    with pytest.raises(ValueError, match=f"event {rid} is a 'R' event"):
        es.trigger(rid)
    with pytest.raises(NotRegisteredError, match="12345"):
        es.trigger(12345)
    with pytest.raises(KeyError):  # NotRegisteredError is a KeyError too
        es.trigger(12345)
    es.delete(rid)


# -- errors name the bad value --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["x", "rr", "", None, 3, "READ"])
def test_unknown_kinds(es, kind):
    with pytest.raises(ValueError, match="unknown event kind " + repr(kind).replace("(", r"\(").replace(")", r"\)")):
        es.add(kind)


@pytest.mark.parametrize(
    ("kind", "source", "error", "text"),
    [
        ("t", "soon", TypeError, "'soon'"),
        ("t", -1, ValueError, "-1"),
        ("T", 0, ValueError, "interval > 0, not 0"),
        ("t", float("nan"), ValueError, "nan"),
        ("t", math.inf, ValueError, "inf"),
        ("t", True, TypeError, "True"),
        ("T", None, TypeError, "None"),
    ],
)
def test_bad_timer_sources(es, kind, source, error, text):
    with pytest.raises(error, match=text):
        es.add(kind, source)
    assert len(es) == 0


@pytest.mark.parametrize(("timeout", "error"), [(-0.5, ValueError), ("1", TypeError), (float("nan"), ValueError)])
def test_bad_timeouts(es, pair, timeout, error):
    with pytest.raises(error, match=repr(timeout) if error is TypeError else str(timeout)):
        es.add("r", pair[0], timeout=timeout)
    assert len(es) == 0 and es.statistics().fds == 0  # refused before registering
    vid = es.add("V")
    with pytest.raises(error):
        es.set(vid, timeout=timeout)
    es.delete(vid)


def test_bad_ids(es):
    with pytest.raises(TypeError, match="'abc'"):
        es.delete("abc")
    with pytest.raises(TypeError, match="True"):
        es.set(True, context=1)
    with pytest.raises(NotRegisteredError, match="no event with id 77"):
        es.set(77, context=1)
    assert es.delete(77) is None


def test_bad_capacity_and_backend():
    with pytest.raises(ValueError, match="0"):
        EventSet(capacity=0)
    from poorio.errors import BackendUnavailableError

    with pytest.raises(BackendUnavailableError, match="'nonesuch'"):
        EventSet(backend="nonesuch")


# -- introspection and lifetime -----------------------------------------------------------------


def test_statistics_and_repr(es, pair):
    a, b = pair
    es.add("R", b)
    es.add("w", b)
    es.add("t", 60)
    es.add("V", True)
    stats = es.statistics()
    assert isinstance(stats, EventStatistics)
    assert (stats.backend, stats.capacity, stats.events, stats.fds, stats.timers, stats.pending, stats.signals) == (
        es.backend,
        64,
        4,
        1,
        1,
        1,
        0,
    )
    with pytest.raises(AttributeError):
        stats.events = 0
    assert stats == es.statistics() and hash(stats) == hash(es.statistics())
    text = repr(es)
    assert es.backend in text and "events=4" in text and "fds=1/64" in text and "timers=1" in text
    ev = next(iter(es(False)))
    assert isinstance(ev, EventRecord) and "'V'" in repr(ev) and "triggered" in repr(ev)
    es.clear()


def test_closed_set_refuses_work(backend):
    es = EventSet(backend=backend)
    assert not es.closed and "closed" not in repr(es)
    es.close()
    es.close()  # idempotent
    assert es.closed and "closed" in repr(es)
    for call in (lambda: es.add("V"), lambda: es.once(), lambda: es(False)):
        with pytest.raises(ClosedResourceError):
            call()
    assert es.delete(1) is None
    es.wakeup()  # a no-op, not an error


def test_context_manager_and_close_on_exec(backend, pair):
    with EventSet(backend=backend) as es:
        es.add("R", pair[0])
        # On Windows the waker is a socket pair, and a SOCKET is a handle, not an fd.
        inheritable = os.get_handle_inheritable if sys.platform == "win32" else os.get_inheritable
        assert not inheritable(es.notifier.waker.fileno())
        assert not inheritable(es.notifier.waker.write_fileno())
    assert es.closed and len(es) == 0
