"""The YieldForIo trap: fibers parked on real sockets and pipes, busy fds, closing fds, kernel errors.

Every case runs on every backend; where it matters, once with a socketpair
handed over as socket objects and once with a pipe handed over as raw ints.
"""

from __future__ import annotations

import errno
import os
import socket

import pytest

from backend_support import closed_fd_errno, skip_unless_pipes
from fiber_helpers import backend, run  # noqa: F401 (fixtures)
from poorio.errors import BusyResourceError, ClosedResourceError
from poorio import notify_closing, sleep, spawn, stats, wait_readable, wait_writable


@pytest.fixture(params=["socketpair", "pipe"])
def channel(request, backend):
    """(reader, writer, read, write): a connected pair and byte-level helpers."""
    if request.param == "pipe":
        skip_unless_pipes(backend)
    if request.param == "socketpair":
        a, b = socket.socketpair()
        a.setblocking(False)
        yield a, b, lambda n: a.recv(n), b.send
        a.close()
        b.close()
    else:
        r, w = os.pipe()
        os.set_blocking(r, False)
        yield r, w, lambda n: os.read(r, n), lambda data: os.write(w, data)
        for fd in (r, w):
            try:
                os.close(fd)
            except OSError:
                pass


def test_reader_parks_until_data_arrives(backend, channel):
    reader, writer, read, write = channel
    log = []

    async def consume():
        log.append("waiting")
        await wait_readable(reader)
        log.append(read(100))

    async def main():
        f = spawn(consume)
        await sleep(0)
        assert stats().io_waits == 1
        log.append("writing")
        write(b"ping")
        await f.join()

    run(main, backend=backend)
    assert log == ["waiting", "writing", b"ping"]


def test_writer_parks_until_the_buffer_drains(backend):
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    log = []

    async def producer():
        sent = 0
        while True:
            try:
                sent += a.send(b"x" * 65536)
            except BlockingIOError:
                break
        log.append("full")
        await wait_writable(a)
        log.append("writable again")
        return sent

    async def main():
        f = spawn(producer)
        await sleep(0)
        drained = 0
        while True:  # drain everything, yielding between chunks
            try:
                drained += len(b.recv(1 << 20))
            except BlockingIOError:
                break
            await sleep(0)
        await f.join()
        return drained == f.result()

    try:
        assert run(main, backend=backend) is True
    finally:
        a.close()
        b.close()
    assert log == ["full", "writable again"]


def test_read_and_write_waits_on_one_fd_are_independent(backend):
    a, b = socket.socketpair()
    log = []

    async def wait_read():
        await wait_readable(a)
        log.append(("read", a.recv(10)))

    async def wait_write():
        await wait_writable(a)
        log.append("write")

    async def main():
        r = spawn(wait_read)
        w = spawn(wait_write)
        await w.join()  # writable at once, while the reader stays parked
        assert not r.done()
        b.send(b"data")
        await r.join()

    try:
        run(main, backend=backend)
    finally:
        a.close()
        b.close()
    assert log == ["write", ("read", b"data")]


def test_two_readers_on_one_fd_is_a_busy_resource_error(backend, channel):
    reader, writer, read, write = channel

    async def consume():
        await wait_readable(reader)
        return read(10)

    async def main():
        first = spawn(consume)
        await sleep(0)
        with pytest.raises(BusyResourceError):
            await wait_readable(reader)
        write(b"!")
        return await first.join()

    assert run(main, backend=backend) == b"!"


def test_notify_closing_wakes_every_waiter_with_closed_resource_error(backend):
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        while True:  # make the write side block too
            try:
                a.send(b"x" * 65536)
            except BlockingIOError:
                break
        log = []

        async def waiter(wait, name):
            try:
                await wait(a)
            except ClosedResourceError as error:
                log.append((name, str(error)))

        async def main():
            fibers = [spawn(waiter, wait_readable, "reader"), spawn(waiter, wait_writable, "writer")]
            await sleep(0)
            assert stats().io_waits == 2
            notify_closing(a)
            assert stats().events == 0  # gone from the pool before the fd is closed
            a.close()
            for f in fibers:
                await f.join()

        run(main, backend=backend)
        fd_text = "fd"
        assert [name for name, _ in log] == ["reader", "writer"]
        assert all(fd_text in message for _, message in log)
    finally:
        a.close()
        b.close()


def test_notify_closing_with_no_waiters_is_harmless(backend, channel):
    reader, writer, read, write = channel

    async def main():
        notify_closing(reader)
        return stats().events

    assert run(main, backend=backend) == 0


def _unused_fd_far_up(start: int = 900) -> int:
    fd = start
    while True:
        try:
            os.fstat(fd)
        except OSError as error:
            if error.errno == errno.EBADF:
                return fd
            raise
        fd += 1


def test_waiting_on_a_closed_fd_raises_the_kernels_error(backend):
    # The kernel hands out the lowest free number, so a just-closed fd may be
    # reused at once (by the event set's own wake-up pipe, say).  A number far
    # above every open fd stays free for the whole test.
    unused = _unused_fd_far_up()

    async def main():
        with pytest.raises(OSError) as info:
            await wait_readable(unused)
        return info.value.errno

    assert run(main, backend=backend) == closed_fd_errno(backend)


def test_wait_rejects_non_fds(backend):
    async def main():
        with pytest.raises(ValueError, match="wait_readable"):
            await wait_readable(-1)
        with pytest.raises(ValueError, match="wait_readable.*'not a file'"):
            await wait_readable("not a file")
        with pytest.raises(ValueError, match="wait_writable"):
            await wait_writable(2**32 + 3)  # beyond any fd: never truncated to fd 3

    run(main, backend=backend)


def test_hangup_wakes_the_reader_to_see_end_of_file(backend, channel):
    reader, writer, read, write = channel

    async def consume():
        await wait_readable(reader)
        return read(10)

    async def main():
        f = spawn(consume)
        await sleep(0)
        if isinstance(writer, socket.socket):
            writer.close()
        else:
            os.close(writer)
        return await f.join()

    assert run(main, backend=backend) == b""


def test_after_a_cancelled_wait_the_fd_can_be_waited_on_again(backend, channel):
    reader, writer, read, write = channel

    async def consume():
        await wait_readable(reader)

    async def main():
        for _ in range(3):
            f = spawn(consume)
            await sleep(0)
            f.cancel()
            await sleep(0)
            assert f.cancelled() and stats().events == 0
        write(b"z")
        await wait_readable(reader)
        return read(1)

    assert run(main, backend=backend) == b"z"


def test_pool_full_is_raised_in_the_fiber(backend):
    pairs = [socket.socketpair() for _ in range(3)]

    async def wait_on(sock):
        await wait_readable(sock)

    async def main():
        fibers = [spawn(wait_on, a) for a, _ in pairs[:2]]
        await sleep(0)
        from poorio.errors import PoolFullError

        with pytest.raises(PoolFullError):
            await wait_readable(pairs[2][0])
        for f in fibers:
            f.cancel()
        await sleep(0)

    try:
        run(main, backend=backend, capacity=2)
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_many_fibers_ping_pong_over_socketpairs(backend):
    n = 20
    pairs = [socket.socketpair() for _ in range(n)]
    for a, b in pairs:
        a.setblocking(False)
        b.setblocking(False)

    async def echo(sock, rounds):
        for _ in range(rounds):
            await wait_readable(sock)
            sock.send(sock.recv(100))

    async def ping(sock, rounds):
        for i in range(rounds):
            sock.send(b"%d" % i)
            await wait_readable(sock)
            assert sock.recv(100) == b"%d" % i
        return rounds

    async def main():
        fibers = []
        for a, b in pairs:
            fibers.append(spawn(echo, b, 50))
            fibers.append(spawn(ping, a, 50))
        return sum([await f.join() or 0 for f in fibers])

    try:
        assert run(main, backend=backend) == n * 50
    finally:
        for a, b in pairs:
            a.close()
            b.close()
