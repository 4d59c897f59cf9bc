"""What is kqueue's own, on a real kqueue: two filters per fd, per-change errors, close-on-exec.

The pool contract every backend shares is in ``test_pool.py``; these cases
cover the choices ``poorio/platform/kqueue.py`` makes that the others have no
counterpart for.  They run on macOS and the BSDs and are skipped elsewhere.
"""

from __future__ import annotations

import errno
import os

import pytest

from poorio.platform import ERROR, HANGUP, READABLE, WRITABLE, kqueue

pytestmark = pytest.mark.skipif(not kqueue.available(), reason="kqueue runs on macOS and the BSDs only")


@pytest.fixture
def pool():
    with kqueue.SocketIoPool(8) as pool:
        yield pool


def test_the_queue_is_close_on_exec(pool):
    assert os.get_inheritable(pool.fileno()) is False


def test_layout_is_the_one_for_this_system():
    assert kqueue.LAYOUT.system == kqueue.SYSTEM
    assert kqueue.filters(kqueue.SYSTEM)["EVFILT_SIGNAL"] == kqueue.EVFILT_SIGNAL


def test_both_filters_of_one_fd_come_back_as_one_pair(pool, pair):
    a, b = pair
    b.send(b"x")
    pool.add(a, READABLE | WRITABLE)
    assert pool.cycle(1.0) == [(a.fileno(), READABLE | WRITABLE)]
    pool.remove(a)


def test_modify_swaps_filters(pool, pair):
    a, _ = pair
    pool.add(a, READABLE)
    assert pool.cycle(0) == []
    pool.modify(a, WRITABLE)
    assert pool.cycle(0) == [(a.fileno(), WRITABLE)]
    pool.modify(a, READABLE)
    assert pool.cycle(0) == []
    pool.remove(a)


def test_a_closed_fd_is_refused_with_ebadf_and_leaves_nothing_behind(pool):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as caught:
        pool.add(r, READABLE | WRITABLE)
    assert caught.value.errno == errno.EBADF
    assert r not in pool and len(pool) == 0


def test_remove_after_close_is_quiet(pool, pair):
    a, b = pair
    fd = a.fileno()
    pool.add(a, READABLE | WRITABLE)
    a.close()
    pool.remove(fd)  # EBADF or ENOENT inside, by system; never raised
    assert fd not in pool


def test_peer_close_reads_as_readable_and_hangup(pool, pair):
    a, b = pair
    pool.add(a, READABLE)
    b.close()
    assert pool.cycle(1.0) == [(a.fileno(), READABLE | HANGUP)]
    pool.remove(a)


def test_write_side_eof_reads_as_error_and_hangup(pool):
    r, w = os.pipe()
    try:
        pool.add(w, WRITABLE)
        os.close(r)
        r = -1
        [(fd, flags)] = pool.cycle(1.0)
        assert fd == w and flags & (ERROR | HANGUP) == ERROR | HANGUP
        pool.remove(w)
    finally:
        os.close(w)
        if r >= 0:
            os.close(r)
