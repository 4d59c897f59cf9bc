"""Streams over pipes: one syscall per primitive, the helpers, closing, cancellation, the blocking hook.

Every case runs on every backend; the peer is a real pipe (and a real
thread for the blocking hook).  Timing appears only as safety nets.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading

import pytest

from backend_support import takes_pipes
from fiber_helpers import backend, run  # noqa: F401 (fixtures)
from poorio import fail_after, move_on_after, sleep, spawn, stats
from poorio.errors import BusyResourceError, ClosedResourceError, IncompleteReadError, LimitOverrunError
from poorio.streams import BLOCKING, BrokenResourceError, FdStream, blocking, pipe
from poorio.platform import default_backend

pytestmark = pytest.mark.skipif(not takes_pipes(default_backend()), reason="these streams are pipes, which WSAPoll cannot poll")

MB = 1024 * 1024


def _payload(size: int) -> bytes:
    return hashlib.sha256(b"seed").digest() * (size // 32)


def _fill(fd: int) -> int:
    """Write into a non-blocking pipe until the kernel refuses; return how much went in."""
    total = 0
    chunk = b"x" * 65536
    while True:
        try:
            total += os.write(fd, chunk)
        except BlockingIOError:
            return total


def test_pipe_carries_megabytes_intact(backend):
    data = _payload(4 * MB)

    async def main():
        r, w = pipe()
        async with r, w:

            async def writer():
                await w.write_all(data)
                w.close()

            f = spawn(writer)
            digest = hashlib.sha256()
            total = 0
            with fail_after(20):
                while True:
                    chunk = await r.read_some(100_000)
                    if not chunk:
                        break
                    digest.update(chunk)
                    total += len(chunk)
            await f.join()
            return total, digest.digest()

    assert run(main, backend=backend) == (len(data), hashlib.sha256(data).digest())


def test_read_into_and_read_exactly(backend):
    async def main():
        r, w = pipe()
        async with r, w:
            await w.write_all(b"0123456789abc")
            buf = bytearray(4)
            n = await r.read_into(buf)
            exact = await r.read_exactly(6)
            w.close()
            with pytest.raises(IncompleteReadError) as info:
                await r.read_exactly(10)
            return n, bytes(buf), exact, info.value.partial, info.value.expected

    assert run(main, backend=backend) == (4, b"0123", b"456789", b"abc", 10)


def test_read_line_and_leftovers_come_first_without_a_syscall(backend):
    async def main():
        r, w = pipe()
        async with r, w:
            await w.write_all(b"one\ntw")
            first = await r.read_line()
            await w.write_all(b"o\nthree")
            second = await r.read_line()
            # "three" is buffered and the pipe is empty with its writer open:
            # a syscall would park, so returning at all proves there was none.
            with fail_after(5):
                rest = await r.read_some()
            w.close()
            last = await r.read_line()
            return first, second, rest, last

    assert run(main, backend=backend) == (b"one\n", b"two\n", b"three", b"")


def test_read_until_delimiter_split_across_writes(backend):
    async def main():
        r, w = pipe()
        async with r, w:

            async def writer():
                for piece in (b"head\r", b"\nbo", b"dy\r\n"):
                    await w.write_all(piece)
                    await sleep(0.01)

            f = spawn(writer)
            with fail_after(5):
                lines = [await r.read_until(b"\r\n", 100), await r.read_until(b"\r\n", 100)]
            await f.join()
            return lines

    assert run(main, backend=backend) == [b"head\r\n", b"body\r\n"]


def test_read_line_limit_raises_and_keeps_the_bytes(backend):
    async def main():
        r, w = pipe()
        async with r, w:
            await w.write_all(b"a" * 40 + b"\nnext\n")
            with pytest.raises(LimitOverrunError):
                await r.read_line(max_size=16)
            held = len(r._rbuf)  # never more than max_size read ahead
            kept = await r.read_some()  # the bytes read while looking stay buffered
            return held, kept, await r.read_line(), await r.read_line()

    assert run(main, backend=backend) == (16, b"a" * 16, b"a" * 24 + b"\n", b"next\n")


def test_read_line_limit_counts_the_delimiter(backend):
    async def main():
        r, w = pipe()
        async with r, w:
            await w.write_all(b"abcd\n")
            with pytest.raises(LimitOverrunError):
                await r.read_line(max_size=4)
            return await r.read_line(max_size=5)

    assert run(main, backend=backend) == b"abcd\n"


def test_end_of_stream_is_empty_bytes(backend):
    async def main():
        r, w = pipe()
        w.close()
        async with r:
            return await r.read_some(), await r.read_into(bytearray(8))

    assert run(main, backend=backend) == (b"", 0)


def test_close_wakes_a_blocked_reader_and_unregisters(backend):
    async def main():
        r, w = pipe()
        with w:

            async def reader():
                with pytest.raises(ClosedResourceError):
                    await r.read_some()
                return "woken"

            f = spawn(reader)
            await sleep(0.01)
            assert stats().io_waits == 1
            r.close()
            with fail_after(5):
                result = await f.join()
            assert stats().io_waits == 0
            with pytest.raises(ClosedResourceError):
                await r.read_some()
            r.close()  # twice is fine
            return result, r.closed

    assert run(main, backend=backend) == ("woken", True)


def test_two_readers_at_once_is_busy(backend):
    async def main():
        r, w = pipe()
        async with r, w:
            first = spawn(r.read_some)
            await sleep(0.01)
            with pytest.raises(BusyResourceError):
                await r.read_some()
            await w.write_all(b"x")
            return await first.join()

    assert run(main, backend=backend) == b"x"


def test_cancel_mid_write_all_breaks_the_write_side(backend):
    data = _payload(8 * MB)

    async def main():
        r, w = pipe()
        async with r, w:
            with move_on_after(0.05) as scope:
                await w.write_all(data)  # nobody reads: it fills the pipe and parks
            assert scope.cancelled_caught
            with pytest.raises(BrokenResourceError, match="interrupted after"):
                await w.write_some(b"more")
            with pytest.raises(BrokenResourceError):
                await w.write_all(b"more")
            w.close()
            got = bytearray()
            while True:
                chunk = await r.read_some()
                if not chunk:
                    break
                got += chunk
            return bytes(got)

    got = run(main, backend=backend)
    assert 0 < len(got) < len(data) and data.startswith(got)  # a prefix arrived, intact


def test_cancel_before_the_first_byte_keeps_the_stream_usable(backend):
    async def main():
        r, w = pipe()
        async with r, w:
            filled = _fill(w.fileno())
            with move_on_after(0.05) as scope:
                await w.write_all(b"after")
            assert scope.cancelled_caught
            drained = len(await r.read_exactly(filled))

            async def writer():
                await w.write_all(b"after")

            f = spawn(writer)
            with fail_after(5):
                tail = await r.read_exactly(5)
            await f.join()
            return drained == filled, tail

    assert run(main, backend=backend) == (True, b"after")


def test_write_to_a_pipe_without_reader_is_epipe(backend):
    async def main():
        r, w = pipe()
        r.close()
        async with w:
            with pytest.raises(BrokenPipeError) as info:
                await w.write_some(b"x")
            return info.value.errno

    assert run(main, backend=backend) == errno.EPIPE


def test_a_busy_stream_lets_other_fibers_run(backend):
    log = []

    async def main():
        r, w = pipe()
        async with r, w:
            await w.write_all(b"y" * 200)

            async def other():
                for i in range(3):
                    log.append(f"other{i}")
                    await sleep(0)

            f = spawn(other)
            for _ in range(200):
                await r.read_some(1)  # never waits: the data is there
            log.append("reader done")
            await f.join()

    run(main, backend=backend)
    assert log.index("other0") < log.index("reader done")


def test_fd_stream_owns_its_fd():
    r, w = os.pipe()
    stream = FdStream(r)
    stream.close()
    os.close(w)
    with pytest.raises(OSError):
        os.fstat(r)


def test_blocking_hook_needs_no_scheduler():
    r, w = pipe(wait=BLOCKING)
    with r, w:
        data = _payload(2 * MB)

        def writer():
            blocking(w.write_all(data))
            w.close()

        t = threading.Thread(target=writer)
        t.start()
        got = bytearray()
        while True:
            chunk = blocking(r.read_some())
            if not chunk:
                break
            got += chunk
        t.join()
    assert bytes(got) == data


def test_blocking_refuses_a_coroutine_that_suspends():
    r, w = pipe()  # the fiber hook: waiting means yielding to a scheduler
    with r, w:
        with pytest.raises(RuntimeError, match="suspended"):
            blocking(r.read_some())


def test_read_some_checks_its_argument_even_with_bytes_buffered(backend):
    """read_some(0) used to hand out b"" (the end-of-stream value) when read_line had left bytes."""

    async def main():
        r, w = pipe()
        async with r, w:
            await w.write_all(b"line\nrest")
            assert await r.read_line() == b"line\n"
            for bad, error in ((0, ValueError), (-1, ValueError), ("1", TypeError), (1.5, TypeError), (True, TypeError)):
                with pytest.raises(error, match="max_bytes"):
                    await r.read_some(bad)
            assert await r.read_some(2**40) == b"rest"  # a huge size reads what there is, no MemoryError
            await w.write_all(b"more")
            return await r.read_some(2**100)

    assert run(main, backend=backend) == b"more"


def test_read_exactly_and_read_line_check_their_arguments(backend):
    async def main():
        r, w = pipe()
        async with r, w:
            await w.write_all(b"abc\n")
            with pytest.raises(ValueError, match="n must be >= 0"):
                await r.read_exactly(-1)
            with pytest.raises(TypeError, match="n must be an int"):
                await r.read_exactly(2.0)
            for bad, error in ((-1, ValueError), (0, ValueError), ("5", TypeError)):
                with pytest.raises(error, match="max_size"):  # -1 was a LimitOverrunError
                    await r.read_line(max_size=bad)
            with pytest.raises(TypeError, match="delimiter"):
                await r.read_until("\n", 10)
            with pytest.raises(TypeError, match="read-only"):
                await r.read_into(b"immutable")
            with pytest.raises(TypeError, match="buffer"):
                await r.read_into("text")
            assert await r.read_exactly(0) == b""
            assert await r.read_line() == b"abc\n"  # nothing was lost by the refusals
            await w.write_all(b"the end")
            w.close()
            with pytest.raises(IncompleteReadError) as caught:
                await r.read_exactly(2**40)  # no up-front allocation: reads until the end
            return caught.value.partial

    assert run(main, backend=backend) == b"the end"


def test_a_long_line_in_small_pieces_comes_whole_and_leaves_the_rest(backend):
    line = _payload(1 * MB) + b"\n"

    async def main():
        r, w = pipe()
        async with r, w:

            async def writer():
                for i in range(0, len(line), 1000):  # pieces that never align with the buffer's growth
                    await w.write_all(line[i : i + 1000])
                    await sleep(0)
                await w.write_all(b"next\r")
                await w.write_all(b"\nlast")
                w.close()

            f = spawn(writer)
            with fail_after(30):
                got = await r.read_line(max_size=len(line))
                crlf = await r.read_until(b"\r\n", 100)  # a delimiter split between two reads
                rest = await r.read_line()
            await f.join()
            return got == line, crlf, rest

    assert run(main, backend=backend) == (True, b"next\r\n", b"last")


def test_read_until_cancelled_or_overrun_keeps_every_byte(backend):
    async def main():
        r, w = pipe()
        async with r, w:
            await w.write_all(b"x" * 5000)
            with move_on_after(0.05):
                await r.read_line(max_size=100_000)  # 5,000 bytes in, no newline yet
            await w.write_all(b"y" * 5000)
            with pytest.raises(LimitOverrunError):
                await r.read_line(max_size=8000)
            await w.write_all(b"\n")
            tail = await r.read_line(max_size=100_000)
            return tail == b"x" * 5000 + b"y" * 5000 + b"\n"

    assert run(main, backend=backend)
