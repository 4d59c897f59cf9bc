"""poorio.selector against CPython's own selector conformance tests, and the stdlib as an oracle.

The conformance part subclasses ``test.test_selectors.BaseSelectorTestCase``
and ``ScalableSelectorMixIn`` once per poorio selector class -- the stdlib's
own pattern -- so the interpreter's tests run unchanged, inside pytest and
under its fd-leak fixture.  What cannot apply is overridden by name, here:

* ``test_modify_unregister`` patches the *stdlib's* private
  ``selectors.EpollSelector._selector_cls`` and so would test the stdlib, not
  us.  It is replaced by the same check on poorio's pool (a failing
  ``modify`` must unregister the fd), plus ``test_modify_refused_by_kernel``
  below with a real ``EBADF`` from epoll.
Borrowed from the stdlib's per-backend classes because they apply to every
poorio selector: ``test_register_bad_fd`` and ``test_empty_select_timeout``
(kqueue's), and ``test_register_file`` (epoll's, on epoll).

Debian's PyPy ships ``test.test_selectors`` in the separate
``pypy3-lib-testsuite`` package; without it the conformance part is skipped,
saying so, and the oracle tests below still run.
"""

from __future__ import annotations

import errno
import gc
import os
import selectors
import socket
import struct
import sys
import unittest
import unittest.mock

import pytest

from poorio import selector as ps
from poorio.errors import BackendUnavailableError, PoolFullError
from poorio.platform import MAX_CAPACITY, backends, default_backend, known_backends

try:
    from test import test_selectors as cpython_tests
except ImportError as exc:  # pragma: no cover - depends on the interpreter's packaging
    cpython_tests = None
    MISSING_REASON = f"this interpreter ships no test.test_selectors ({exc}); on Debian's PyPy install pypy3-lib-testsuite"



SELECTOR_CLASSES = ps.selector_classes()
BY_NAME = {cls.BACKEND: cls for cls in SELECTOR_CLASSES}


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path, monkeypatch):
    """Run in a fresh directory: the stdlib's ``make_bad_fd`` creates a file in
    the current one, which is read-only where the checkout is mounted so."""
    monkeypatch.chdir(tmp_path)


def _unusable(backend: str) -> str:
    return f"backend {backend!r} is not usable here (usable: {', '.join(backends())})"


# -- CPython's conformance tests -----------------------------------------------------

if cpython_tests is None:

    def test_cpython_conformance_suite_available():
        pytest.skip(MISSING_REASON)

else:

    def _borrow(stdlib_case: str, name: str):
        """A test method of one of the stdlib's per-backend cases, or a named skip."""
        method = vars(getattr(cpython_tests, stdlib_case)).get(name)
        if method is not None:
            return method

        def missing(self):
            self.skipTest(f"this interpreter's test_selectors has no {stdlib_case}.{name}")

        return missing

    class _PoorioConformance(cpython_tests.BaseSelectorTestCase, cpython_tests.ScalableSelectorMixIn):
        """The stdlib's base case, adapted where it reaches into the stdlib's internals."""

        test_register_bad_fd = _borrow("KqueueSelectorTestCase", "test_register_bad_fd")
        test_empty_select_timeout = _borrow("KqueueSelectorTestCase", "test_empty_select_timeout")

        def backend(self) -> str:
            return self.SELECTOR.BACKEND or default_backend()

        def test_modify_unregister(self):
            # The stdlib's version mocks selectors.EpollSelector._selector_cls;
            # ours makes poorio's pool refuse the change instead.
            s = self.SELECTOR()
            self.addCleanup(s.close)
            rd, wr = self.make_socketpair()
            s.register(rd, selectors.EVENT_READ)
            self.assertEqual(len(s.get_map()), 1)
            with unittest.mock.patch.object(s._pool, "modify", side_effect=ZeroDivisionError):
                with self.assertRaises(ZeroDivisionError):
                    s.modify(rd, selectors.EVENT_WRITE)
            self.assertEqual(len(s.get_map()), 0)
            self.assertNotIn(rd.fileno(), s._pool)

    @unittest.skipUnless("epoll" in backends(), _unusable("epoll"))
    class TestEpollSelectorConformance(_PoorioConformance, unittest.TestCase):
        SELECTOR = ps.EpollSelector
        test_register_file = _borrow("EpollSelectorTestCase", "test_register_file")

    @unittest.skipUnless("kqueue" in backends(), _unusable("kqueue"))
    class TestKqueueSelectorConformance(_PoorioConformance, unittest.TestCase):
        SELECTOR = ps.KqueueSelector

    @unittest.skipUnless("poll" in backends(), _unusable("poll"))
    class TestPollSelectorConformance(_PoorioConformance, unittest.TestCase):
        SELECTOR = ps.PollSelector

    @unittest.skipUnless("wsapoll" in backends(), _unusable("wsapoll"))
    class TestWSAPollSelectorConformance(_PoorioConformance, unittest.TestCase):
        SELECTOR = ps.WSAPollSelector

    class TestDefaultSelectorConformance(_PoorioConformance, unittest.TestCase):
        SELECTOR = ps.Selector


# -- the stdlib as an oracle ---------------------------------------------------------

all_selectors = pytest.mark.parametrize("cls", SELECTOR_CLASSES, ids=lambda cls: cls.BACKEND)


def _tcp_pair():
    """A connected TCP pair over loopback (``socketpair`` gives no RST semantics)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return client, server


def _readiness(selector, objs) -> dict:
    return {key.fd: events for key, events in selector.select(0) if key.fileobj in objs}


def _scenarios():
    """Each yields (name, objects to watch, cleanup) in one readiness state."""
    a, b = socket.socketpair()
    yield "idle pair", [a], [a, b]
    a, b = socket.socketpair()
    b.send(b"x")
    yield "data pending", [a], [a, b]
    a, b = socket.socketpair()
    b.close()
    yield "peer closed (hang-up)", [a], [a]
    a, b = _tcp_pair()
    # Closing with unread data and a zero linger sends RST: POLLERR|POLLHUP on the peer.
    a.send(b"unread")
    b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    b.close()
    yield "peer reset (error)", [a], [a]
    if sys.platform == "win32":  # Windows' select() and WSAPoll take only sockets
        return
    r, w = os.pipe()
    os.close(w)
    yield "pipe, writer closed", [r], [r]
    r, w = os.pipe()
    os.close(r)
    yield "pipe, reader closed", [w], [w]


def _close(obj):
    if isinstance(obj, int):
        os.close(obj)
    else:
        obj.close()


@all_selectors
@pytest.mark.parametrize("mask", [1, 2, 3], ids=["read", "write", "both"])
def test_events_match_the_stdlib(cls, mask):
    """ERROR and HANGUP translate to EVENT_READ/EVENT_WRITE exactly as the stdlib's selectors do."""
    seen = 0
    for name, watched, owned in _scenarios():
        try:
            with cls() as ours, selectors.DefaultSelector() as oracle:
                for obj in watched:
                    ours.register(obj, mask)
                    oracle.register(obj, mask)
                expected = _readiness(oracle, watched)
                assert _readiness(ours, watched) == expected, name
                seen |= sum(expected.values())
        finally:
            for obj in owned:
                _close(obj)
    assert seen == mask  # the scenarios did exercise every event asked for


@all_selectors
def test_every_ready_fd_is_reported(cls):
    """More ready fds than one kernel wait decodes (1,024 for epoll): one select() still reports each, once."""
    pairs = [socket.socketpair() for _ in range(1500)]
    try:
        with cls(capacity=len(pairs)) as sel:
            for a, _b in pairs:
                sel.register(a, selectors.EVENT_WRITE)
            for _ in range(2):  # and again: the kernel's ready list has rotated meanwhile
                batch = sel.select(0)
                assert all(events == selectors.EVENT_WRITE for _key, events in batch)
                fds = [key.fd for key, _events in batch]
                assert len(fds) == len(set(fds)) == len(pairs)
    finally:
        for a, b in pairs:
            a.close()
            b.close()


@all_selectors
def test_full_selector_raises_and_keeps_nothing(cls):
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        with cls(capacity=2) as sel:
            assert sel.capacity == 2
            sel.register(pairs[0][0], selectors.EVENT_READ)
            sel.register(pairs[1][0], selectors.EVENT_READ)
            with pytest.raises(PoolFullError, match="capacity of 2"):
                sel.register(pairs[2][0], selectors.EVENT_READ, "data")
            assert len(sel.get_map()) == 2
            assert pairs[2][0] not in sel.get_map()
            with pytest.raises(KeyError):
                sel.get_key(pairs[2][0])
            sel.unregister(pairs[0][0])
            key = sel.register(pairs[2][0], selectors.EVENT_READ, "data")
            assert sel.get_key(pairs[2][0]) == key
    finally:
        for a, b in pairs:
            a.close()
            b.close()


@all_selectors
def test_capacity_must_be_positive(cls):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            cls(capacity=bad)


def test_default_capacity_follows_the_fd_limit():
    resource = pytest.importorskip("resource")
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    expected = MAX_CAPACITY if soft == resource.RLIM_INFINITY else min(soft, MAX_CAPACITY)
    assert ps.default_capacity() == expected
    with ps.Selector() as sel:
        assert sel.capacity == expected
        assert sel.statistics().capacity == expected


@pytest.mark.skipif(not {"epoll", "kqueue"} & set(backends()), reason="needs a backend with kernel-side registration")
def test_modify_refused_by_kernel():
    """bpo-30014 with a real error: a modify the kernel refuses unregisters the fd, errno intact."""
    cls = BY_NAME.get("epoll") or BY_NAME["kqueue"]
    a, b = socket.socketpair()
    try:
        with cls() as sel:
            fd = a.fileno()
            sel.register(fd, selectors.EVENT_READ)
            a.close()  # the kernel forgets the fd; the selector still has a key for it
            with pytest.raises(OSError) as caught:
                sel.modify(fd, selectors.EVENT_WRITE)
            assert caught.value.errno in (errno.EBADF, errno.ENOENT)
            assert fd not in sel.get_map()
            assert sel.statistics().size == 0
    finally:
        a.close()
        b.close()


@all_selectors
def test_closed_selector(cls):
    a, b = socket.socketpair()
    try:
        sel = cls()
        sel.register(a, selectors.EVENT_READ)
        sel.close()
        sel.close()  # idempotent
        assert sel.get_map() is None
        assert "closed" in repr(sel)
        with pytest.raises(RuntimeError):
            sel.get_key(a)
        with pytest.raises(ValueError):
            sel.register(b, selectors.EVENT_READ)
        with pytest.raises(ValueError):
            sel.select(0)
        with pytest.raises(KeyError):
            sel.unregister(a)
    finally:
        a.close()
        b.close()


@all_selectors
def test_dropped_selector_releases_its_pool(cls):
    sel = cls()
    pool = sel._pool
    del sel
    gc.collect()
    assert pool.closed


@all_selectors
def test_invalid_events_on_modify_change_nothing(cls):
    a, b = socket.socketpair()
    try:
        with cls() as sel:
            key = sel.register(a, selectors.EVENT_READ, "data")
            for bad in (0, 4, 999999):
                with pytest.raises(ValueError):
                    sel.modify(a, bad)
            assert sel.get_key(a) == key
    finally:
        a.close()
        b.close()


def test_each_class_names_its_backend():
    with ps.Selector() as sel:
        assert sel.backend == default_backend()
    for cls in SELECTOR_CLASSES:
        with cls() as sel:
            assert sel.backend == cls.BACKEND
            assert isinstance(sel, ps.Selector) and isinstance(sel, selectors.BaseSelector)
    pinned = {ps.EpollSelector, ps.KqueueSelector, ps.PollSelector, ps.WSAPollSelector}
    assert {cls.BACKEND for cls in pinned} <= set(known_backends())
    for cls in pinned - set(SELECTOR_CLASSES):
        with pytest.raises(BackendUnavailableError):
            cls()


# -- differential: random operation sequences against the stdlib --------------------

try:
    from hypothesis import given, settings, strategies as st
except ImportError:  # pragma: no cover - hypothesis is a test extra
    given = None

if given is not None:
    PAIRS = 4
    _index = st.integers(0, PAIRS - 1)
    _ops = st.one_of(
        st.tuples(st.just("register"), _index, st.sampled_from([0, 1, 2, 3, 4]), st.sampled_from([None, "a", "b"])),
        st.tuples(st.just("modify"), _index, st.sampled_from([1, 2, 3]), st.sampled_from([None, "a", "b"])),
        st.tuples(st.just("unregister"), _index),
        st.tuples(st.just("get_key"), _index),
        st.tuples(st.just("send"), _index),
        st.tuples(st.just("drain"), _index),
        st.tuples(st.just("hang_up"), _index),
        st.tuples(st.just("select")),
    )

    def _apply(selector, op, ends):
        """One operation; its outcome as plain data (keys as tuples, errors by type)."""
        name, *args = op
        try:
            if name == "select":
                if not isinstance(selector, ps.Selector) and not selector.get_map():
                    # The stdlib's select() refuses three empty sets on Windows
                    # (documented); an empty oracle has nothing ready anywhere.
                    return []
                return sorted((key.fd, key.events, key.data, events) for key, events in selector.select(0))
            mine = ends[args[0]]
            if name == "register":
                key = selector.register(mine, args[1], args[2])
            elif name == "modify":
                key = selector.modify(mine, args[1], args[2])
            elif name == "unregister":
                key = selector.unregister(mine)
            else:
                key = selector.get_key(mine)
            return (key.fd, key.events, key.data)
        except (KeyError, ValueError) as exc:
            return type(exc).__name__

    @all_selectors
    @settings(max_examples=60)
    @given(ops=st.lists(_ops, max_size=30))
    def test_behaves_like_the_stdlib(cls, ops):
        """Any sequence of (valid or invalid) calls returns or raises what the stdlib's selector does."""
        pairs = [socket.socketpair() for _ in range(PAIRS)]
        mine = [a for a, _ in pairs]
        peers = [b for _, b in pairs]
        for sock in mine:
            sock.setblocking(False)
        try:
            with cls() as ours, selectors.DefaultSelector() as oracle:
                for op in ops:
                    if op[0] == "send":
                        if peers[op[1]].fileno() >= 0:  # not hung up yet
                            peers[op[1]].send(b"x")
                    elif op[0] == "drain":
                        try:
                            mine[op[1]].recv(4096)
                        except BlockingIOError:
                            pass
                    elif op[0] == "hang_up":
                        peers[op[1]].close()
                    else:
                        assert _apply(ours, op, mine) == _apply(oracle, op, mine), op
                assert _apply(ours, ("select",), mine) == _apply(oracle, ("select",), mine)
        finally:
            for a, b in pairs:
                a.close()
                b.close()
