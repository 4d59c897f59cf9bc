"""Streams keep their fd registered between waits: and never let that registration outlive the fd.

A stream's waits leave its fd in the pool (two syscalls fewer per wait);
``close`` drops it before the fd closes, and a stream nobody closed hands
its fd to the notifier, which drops the registration before closing it.
A raw wait on a socket object keeps its registration too (the object is its
identity); a raw fd number stays eager: registered only while waited on.
"""

from __future__ import annotations

import gc
import os
import socket
import sys

from fiber_helpers import backend, run  # noqa: F401 (fixtures)
from poorio import fail_after, notify_closing, sleep, spawn, stats, wait_readable
from poorio.net import SocketStream
from poorio._core.traps import current_scheduler


def _registered(fd: int) -> bool:
    return current_scheduler().notifier.interest(fd) != 0


def _is_open(fd: int) -> bool:
    """Whether the kernel knows ``fd``.

    Windows has no fstat for a SOCKET, so there a socket object is made on
    it; not elsewhere, because PyPy's makes the shared file blocking.
    """
    try:
        if sys.platform == "win32":
            socket.socket(fileno=fd).detach()
        else:
            os.fstat(fd)
    except OSError:
        return False
    return True


def _stream_pair():
    a, b = socket.socketpair()
    return SocketStream(a), b


def test_a_stream_fd_stays_registered_between_reads_and_close_drops_it(backend):
    async def main():
        stream, peer = _stream_pair()
        fd = stream.fileno()

        async def later():
            await sleep(0.01)
            peer.send(b"x")

        spawn(later)
        assert await stream.read_some() == b"x"  # waited: EAGAIN first
        assert _registered(fd)  # parked, nobody waits
        spawn(later)
        assert await stream.read_some() == b"x"  # the parked registration serves again
        stream.close()
        assert not _registered(fd)
        peer.close()

    run(main, backend=backend)


def test_raw_waits_on_an_fd_number_stay_eager_and_on_a_socket_are_kept(backend):
    async def main():
        a, b = socket.socketpair()
        with a, b:
            b.send(b"x")
            await wait_readable(a.fileno())  # a bare number has no identity to keep by
            assert not _registered(a.fileno())
            await wait_readable(a)  # the object: its registration stays for the next wait
            assert _registered(a.fileno())
            notify_closing(a)  # the promise kept before closing drops it at once
            assert not _registered(a.fileno())

    run(main, backend=backend)


def test_a_socket_closed_without_notice_does_not_confuse_its_successor(backend):
    """A kept raw registration whose socket was closed without notify_closing: a new socket on the number is watched for real."""

    async def main():
        a, b = socket.socketpair()
        b.send(b"x")
        await wait_readable(a)
        fd = a.fileno()
        a.close()  # no notify_closing: the registration stays, keyed by the old object
        b.close()
        c, d = socket.socketpair()
        with c, d:
            assert fd in (c.fileno(), d.fileno())  # the number was reused
            reused = c if c.fileno() == fd else d
            other = d if reused is c else c
            spawn(lambda: _send_later(other, b"y"))
            with fail_after(5):
                await wait_readable(reused)  # registered afresh, not taken for the old one
            assert reused.recv(10) == b"y"
            notify_closing(reused)

    run(main, backend=backend)


def test_a_raw_socket_closed_while_its_file_lives_on_does_not_make_the_loop_spin(backend):
    """epoll keeps reporting a closed fd whose file lives in a dup: the notifier rebuilds its pool instead of spinning."""

    async def main():
        a, b = socket.socketpair()
        dup = a.dup()  # the file lives on after a is closed (os.dup cannot: a Windows SOCKET is no fd)
        try:
            b.send(b"x")
            await wait_readable(a)  # kept: the registration stays after the wake-up
            a.close()  # no notify_closing, and the file is still open through dup
            before = stats().polls
            await sleep(0.05)
            assert stats().polls - before < 20  # slept (a spin would poll thousands of times)
            rebuilds = current_scheduler().notifier.statistics().rebuilds
            assert rebuilds >= 1 if backend == "epoll" else rebuilds == 0  # only epoll keeps such a ghost
        finally:
            dup.close()
            b.close()

    run(main, backend=backend)


def test_an_unclosed_stream_is_unregistered_before_its_fd_closes(backend):
    """A dropped stream's fd stays open until the set has unregistered it, so its number is not reused meanwhile."""

    async def main():
        stream, peer = _stream_pair()
        fd = stream.fileno()
        spawn(lambda: _send_later(peer, b"x"))
        await stream.read_some()
        assert _registered(fd)
        del stream
        gc.collect()  # PyPy finalizes only now
        assert _is_open(fd)  # handed to the event set, not closed
        await sleep(0)  # a collection runs the deferred close
        await sleep(0.001)
        assert not _registered(fd)
        if _is_open(fd):  # the number was reused by another socket: it must not be this one
            assert fd != peer.fileno()
        # A new stream may get the same number: it must be watched for real.
        fresh, fresh_peer = _stream_pair()
        spawn(lambda: _send_later(fresh_peer, b"y"))
        with fail_after(5):
            assert await fresh.read_some() == b"y"
        fresh.close()
        fresh_peer.close()
        peer.close()

    run(main, backend=backend)


def test_an_unclosed_stream_over_a_shared_file_does_not_keep_reporting(backend):
    """The classic epoll trap: a closed fd whose file lives on in a dup keeps reporting, unless removed first."""

    async def main():
        stream, peer = _stream_pair()
        fd = stream.fileno()
        dup = socket.fromfd(fd, peer.family, peer.type)  # a SOCKET is duplicated by winsock, not dup()
        dup.setblocking(False)  # PyPy's fromfd made the shared file blocking: the stream's too
        try:
            spawn(lambda: _send_later(peer, b"x"))
            await stream.read_some()
            del stream
            gc.collect()
            await sleep(0.001)
            assert not _registered(fd)
            peer.send(b"more")  # the dup is readable now: nobody may be woken for it
            before = stats().polls
            await sleep(0.05)
            assert stats().polls - before < 20  # slept (a spin would poll thousands of times)
        finally:
            dup.close()
            peer.close()

    run(main, backend=backend)


async def _send_later(sock, data):
    await sleep(0.005)
    sock.send(data)


def test_after_a_short_read_the_next_read_waits_first_and_still_gets_waiting_data(backend):
    """A read that drained the socket makes the next one wait before its recv (no EAGAIN round); data already there still comes."""

    async def main():
        stream, peer = _stream_pair()
        peer.send(b"0123456789")
        assert await stream.read_some(4) == b"0123"  # a full read: more may be waiting
        assert not stream._drained
        assert await stream.read_some(100) == b"456789"  # short: the buffer is empty now
        assert stream._drained
        peer.send(b"ab")  # already there when the next read starts
        with fail_after(5):
            assert await stream.read_some(100) == b"ab"
        spawn(lambda: _send_later(peer, b"cd"))
        with fail_after(5):
            assert await stream.read_some(100) == b"cd"
        peer.close()
        assert await stream.read_some(100) == b""  # end of stream after a short read
        stream.close()

    run(main, backend=backend)
