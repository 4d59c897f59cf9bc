"""What is WSAPoll's own, on real winsock: sockets only, Ctrl-C within a slice, empty pools.

The pool contract every backend shares is in ``test_pool.py``.  These run on
Windows and under Wine (which implements WSAPoll itself, so they check the
binding and poorio's Windows paths, not Windows' kernel quirks).
"""

from __future__ import annotations

import _thread
import socket
import threading
import time

import pytest

from backend_support import ON_WINE
from poorio.platform import READABLE, WRITABLE, wsapoll

pytestmark = pytest.mark.skipif(not wsapoll.available(), reason="WSAPoll is Windows' (and Wine's)")

WSAEINVAL = 10022
WSAENOTSOCK = 10038


@pytest.fixture
def pool():
    with wsapoll.SocketIoPool(8) as pool:
        yield pool


def test_readable_and_writable(pool, pair):
    a, b = pair
    pool.add(a, READABLE | WRITABLE)
    assert pool.cycle(0) == [(a.fileno(), WRITABLE)]
    b.send(b"x")
    assert pool.cycle(1.0) == [(a.fileno(), READABLE | WRITABLE)]
    pool.remove(a)


def test_a_non_socket_is_refused_with_winerror(pool):
    with pytest.raises(OSError) as caught:
        pool.add(0x7FFF0, READABLE)  # no such socket handle
    assert caught.value.winerror == WSAENOTSOCK
    assert len(pool) == 0


def test_a_closed_socket_is_refused_with_winerror(pool):
    # Winsock's answer where POSIX backends say EBADF.
    sock = socket.socket()
    handle = sock.fileno()
    sock.close()
    with pytest.raises(OSError) as caught:
        pool.add(handle, READABLE)
    assert caught.value.winerror == WSAENOTSOCK
    assert handle not in pool


def test_only_rdnorm_and_wrnorm_reach_wsapoll(pool, pair):
    # Anything else in events -- POLLPRI above all -- fails the whole call on Windows.
    a, _ = pair
    pool.add(a, READABLE | WRITABLE)
    record = pool._array[0]
    assert (record.fd, record.events) == (a.fileno(), wsapoll.POLLRDNORM | wsapoll.POLLWRNORM)
    pool.modify(a, READABLE)
    assert record.events == wsapoll.POLLRDNORM
    pool.remove(a)


def test_a_pool_of_sockets_closed_behind_its_back_fails_with_winerror(pool):
    # The error comes from WSAPoll itself, through use_last_error.  Windows
    # documents WSAEINVAL when no entry is a valid socket; Wine says WSAENOTSOCK.
    sock = socket.socket()
    handle = sock.fileno()
    pool.add(sock, READABLE)
    sock.close()
    with pytest.raises(OSError) as caught:
        pool.cycle(0)
    assert caught.value.winerror == (WSAENOTSOCK if ON_WINE else WSAEINVAL)
    pool.remove(handle)


def test_an_empty_pool_sleeps_for_the_timeout(pool):
    start = time.monotonic()
    assert pool.cycle(0.25) == []
    assert time.monotonic() - start >= 0.25


def test_a_long_wait_is_sliced_and_still_times_out(pool, pair):
    a, _ = pair
    pool.add(a, READABLE)
    start = time.monotonic()
    assert pool.cycle(3 * wsapoll.SLICE_MS / 1000.0) == []
    assert time.monotonic() - start >= 0.3
    pool.remove(a)


def test_ctrl_c_interrupts_a_blocking_wait(pool, pair):
    a, _ = pair
    pool.add(a, READABLE)
    # interrupt_main() only flags SIGINT, as Windows' console handler does:
    # nothing wakes WSAPoll, so only the slicing gets the handler to run.
    timer = threading.Timer(0.2, _thread.interrupt_main)
    timer.start()
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            pool.cycle(None)
    finally:
        timer.join()
    assert time.monotonic() - start < 0.2 + 5 * wsapoll.SLICE_MS / 1000.0
    pool.remove(a)


def test_connects_are_checked_in_slices_where_wsapoll_runs():
    from poorio.platform import facts

    # Windows before 10 version 2004 never reports a failed connect to WSAPoll.
    assert facts.CONNECT_CHECK_INTERVAL is not None
    assert 0 < facts.CONNECT_CHECK_INTERVAL <= 1.0
