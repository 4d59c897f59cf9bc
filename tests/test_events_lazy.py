"""fd registrations: sets with keep=True keep a delivered fd registered; the pool always watches at least what events want."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events_support import BACKENDS, assert_clean, backend, drain, pair  # noqa: F401 (fixtures)
from poorio.errors import AlreadyRegisteredError
from poorio.events import EventSet
from poorio.platform import READABLE, WRITABLE


@pytest.fixture
def lazy(backend):
    es = EventSet(capacity=4, backend=backend, keep=True)
    try:
        yield es
    finally:
        es.close()


def test_delivered_fd_stays_registered_and_is_reused(lazy, pair):
    a, b = pair
    a.send(b"x")
    rid = lazy.add("r", b)
    assert drain(lazy) == [(rid, "read", 0)]
    assert rid not in lazy and lazy.statistics().fds == 1  # parked
    b.recv(1)
    rid = lazy.add("r", b)  # no new registration needed
    assert lazy.notifier.interest(b.fileno()) == READABLE
    a.send(b"y")
    assert drain(lazy) == [(rid, "read", 0)]
    assert lazy.forget_fd(b) == [] and lazy.statistics().fds == 0
    assert lazy.notifier.interest(b.fileno()) == 0


def test_parked_fd_ready_for_nobody_is_dropped(lazy, pair):
    a, b = pair
    a.send(b"x")
    lazy.add("r", b)
    drain(lazy)
    vid = lazy.add("V")
    assert drain(lazy) == []  # still readable, but nobody waits: dropped, not delivered
    assert lazy.statistics().fds == 0
    lazy.delete(vid)
    assert_clean(lazy)


def test_parked_direction_is_narrowed_when_it_fires(lazy, pair):
    a, b = pair
    wid = lazy.add("w", b)
    assert drain(lazy) == [(wid, "write", 0)]
    rid = lazy.add("R", b)  # the writer's interest is still parked
    assert lazy.notifier.interest(b.fileno()) == READABLE | WRITABLE
    assert drain(lazy) == []  # writable for nobody
    assert lazy.notifier.interest(b.fileno()) == READABLE
    lazy.delete(rid)  # an explicit delete never parks
    assert_clean(lazy)


def test_parked_fds_give_way_when_the_set_is_full(backend):
    socks = [socket.socketpair() for _ in range(3)]
    try:
        with EventSet(capacity=2, backend=backend, keep=True) as es:
            for a, b in socks[:2]:
                es.add("w", a)
            assert len(drain(es)) == 2 and es.statistics().fds == 2  # both parked
            es.add("w", socks[2][0])
            assert es.statistics().fds == 1  # parked ones were evicted
            es.clear()
            assert_clean(es)
    finally:
        for a, b in socks:
            a.close()
            b.close()


def test_clear_drops_parked_fds(lazy, pair):
    lazy.add("w", pair[0])
    drain(lazy)
    assert lazy.statistics().fds == 1
    lazy.clear()
    assert_clean(lazy)


# -- the registration invariant, under random operations ------------------------------------

_op = st.tuples(
    st.sampled_from(["add", "delete", "forget", "deliver", "send", "recv"]),
    st.sampled_from("rRwW"),
    st.integers(0, 2),
)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("is_lazy", [False, True])
@settings(max_examples=60)
@given(ops=st.lists(_op, max_size=30))
def test_pool_watches_what_events_want(name, is_lazy, ops):
    pairs = [socket.socketpair() for _ in range(3)]
    for a, b in pairs:
        a.setblocking(False)
        b.setblocking(False)
    ids = {}  # (sock index, direction) -> event id
    try:
        with EventSet(capacity=8, backend=name, keep=is_lazy) as es:
            for op, kind, i in ops:
                sock = pairs[i][0]
                key = (i, kind.lower())
                if op == "add":
                    if key in ids and ids[key] in es:
                        with pytest.raises(AlreadyRegisteredError):
                            es.add(kind, sock)
                    else:
                        ids[key] = es.add(kind, sock)
                elif op == "delete" and key in ids:
                    es.delete(ids.pop(key))
                elif op == "forget":
                    es.forget_fd(sock)
                elif op == "deliver":
                    list(es(False))
                elif op == "send":
                    pairs[i][1].send(b"x")
                elif op == "recv":
                    try:
                        sock.recv(64)
                    except BlockingIOError:
                        pass
                for n, (s, _) in enumerate(pairs):
                    want = (READABLE if ids.get((n, "r")) in es else 0) | (WRITABLE if ids.get((n, "w")) in es else 0)
                    have = es.notifier.interest(s.fileno())
                    if is_lazy:
                        assert have & want == want
                    else:
                        assert have == want
            es.clear()
            assert_clean(es)
    finally:
        for a, b in pairs:
            a.close()
            b.close()
