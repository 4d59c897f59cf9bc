"""ProactorStream: a pipe read and written as kernel operations -- IOCP on Windows (Wine), io_uring on Linux.

On Windows ``poorio.streams.pipe()`` makes these (WSAPoll cannot wait on
pipes); on Linux the same class runs over ``os.pipe()`` on the uring
backend, so CI exercises it natively too.
"""

from __future__ import annotations

import errno
import gc
import os
import sys

import pytest

from poorio import BusyResourceError, ClosedResourceError, move_on_after, run, sleep, spawn
from poorio.errors import BackendUnavailableError
from poorio.platform import backends
from poorio.streams import ProactorStream, pipe

WINDOWS = sys.platform == "win32"
BACKEND = None if WINDOWS else "uring"
pytestmark = pytest.mark.skipif(not WINDOWS and "uring" not in backends(), reason="io_uring is not usable here")


def make_pipe() -> tuple:
    if WINDOWS:
        return pipe()
    r, w = os.pipe()
    return ProactorStream(r), ProactorStream(w)


def go(main, *args):
    return run(main, *args, backend=BACKEND)


def test_bytes_cross_whole_and_in_order_with_a_reader_and_a_writer_at_once():
    payload = os.urandom(1 << 20)  # more than a pipe holds: both sides wait on the kernel in turn

    async def main():
        reader, writer = make_pipe()
        got = bytearray()

        async def write():
            await writer.write_all(payload)
            writer.close()

        fiber = spawn(write)
        while True:
            chunk = await reader.read_some(65536)
            if not chunk:
                break
            got += chunk
        await fiber.join()
        reader.close()
        return bytes(got)

    assert go(main) == payload


def test_read_into_read_until_and_read_exactly_use_the_same_reads():
    async def main():
        reader, writer = make_pipe()
        try:
            await writer.write_all(b"first line\nsecond")
            line = await reader.read_line()
            buffer = bytearray(3)
            n = await reader.read_into(buffer)
            rest = await reader.read_exactly(3)
            return line, bytes(buffer[:n]), rest
        finally:
            reader.close()
            writer.close()

    assert go(main) == (b"first line\n", b"sec", b"ond")


def test_a_cancelled_read_takes_nothing_from_the_pipe():
    async def main():
        reader, writer = make_pipe()
        try:
            with move_on_after(0.05) as scope:
                await reader.read_some()  # nothing written yet: the kernel holds the read
            assert scope.cancelled_caught
            await writer.write_all(b"after the cancel")
            return await reader.read_exactly(16)
        finally:
            reader.close()
            writer.close()

    assert go(main) == b"after the cancel"


def test_closing_under_a_read_wakes_it_with_closed_resource_error():
    async def main():
        reader, writer = make_pipe()
        outcome = []

        async def read():
            try:
                await reader.read_some()
            except ClosedResourceError as error:
                outcome.append(error)

        fiber = spawn(read)
        await sleep(0.02)
        reader.close()
        await fiber.join()
        writer.close()
        with pytest.raises(ClosedResourceError):
            await reader.read_some()
        return outcome

    (error,) = go(main)
    assert "closed" in str(error)


def test_a_second_reader_at_once_is_refused():
    async def main():
        reader, writer = make_pipe()
        try:
            first = spawn(reader.read_some)
            await sleep(0.01)
            with pytest.raises(BusyResourceError):
                await reader.read_some()
            await writer.write_all(b"x")
            return await first.join()
        finally:
            reader.close()
            writer.close()

    assert go(main) == b"x"


def test_the_end_of_the_pipe_reads_empty_and_writing_without_a_reader_is_the_kernels_epipe():
    async def main():
        reader, writer = make_pipe()
        await writer.write_all(b"last")
        writer.close()
        data = await reader.read_some()
        end = await reader.read_some()
        reader.close()
        reader2, writer2 = make_pipe()
        reader2.close()
        try:
            with pytest.raises(OSError) as caught:
                await writer2.write_all(b"nobody reads this")
        finally:
            writer2.close()
        return data, end, caught.value

    data, end, error = go(main)
    assert (data, end) == (b"last", b"")
    assert error.errno == errno.EPIPE  # BrokenPipeError; winerror 109 or 232 on Windows


@pytest.mark.skipif(WINDOWS, reason="a closed handle number cannot be told from a live one by fstat")
def test_a_stream_nobody_closes_is_closed_once_collected_through_the_notifier():
    async def main():
        reader, writer = make_pipe()
        await writer.write_all(b"x")
        assert await reader.read_some() == b"x"
        fds = reader.fileno(), writer.fileno()
        del reader, writer
        gc.collect()
        await sleep(0.01)  # the next collect tells the proactor, then closes
        return fds

    for fd in go(main):
        with pytest.raises(OSError):
            os.fstat(fd)


def test_read_some_reuses_its_buffer_but_hands_out_fresh_bytes():
    async def main():
        reader, writer = make_pipe()
        try:
            await writer.write_all(b"first")
            first = await reader.read_some(16)
            await writer.write_all(b"second!")
            second = await reader.read_some(16)
            return first, second
        finally:
            reader.close()
            writer.close()

    assert go(main) == (b"first", b"second!")


@pytest.mark.skipif(WINDOWS, reason="every Windows scheduler has a completion port")
def test_a_scheduler_without_a_proactor_says_so():
    readiness = next(b for b in backends() if b != "uring")

    async def main():
        reader, writer = make_pipe()
        try:
            with pytest.raises(BackendUnavailableError, match="only reports readiness"):
                await reader.read_some()
        finally:
            reader.close()
            writer.close()

    run(main, backend=readiness)
