"""open_file/AsyncFile on real files: text and binary, seek/tell, line iteration, errors, turns, cancellation, close."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import time

import pytest

from fiber_helpers import backend, run  # noqa: F401 (fixtures)
import poorio
from poorio import CancelScope, Group, current_scheduler, move_on_after, sleep, spawn
from poorio.files import open_file, wrap_file
from poorio.platform import backends, iocp


def test_write_then_read_text(tmp_path, backend):
    path = tmp_path / "a.txt"

    async def main():
        async with await open_file(path, "w") as f:
            assert await f.write("one\ntwo\n") == 8
            await f.writelines(["three\n", "four"])
            await f.flush()
            assert f.name == str(path) and f.mode == "w"
        assert f.closed
        async with await open_file(path) as f:
            assert [line async for line in f] == ["one\n", "two\n", "three\n", "four"]
            assert await f.seek(0) == 0
            assert await f.readline() == "one\n"
            assert await f.tell() == len("one" + os.linesep)  # text mode wrote "\r\n" on Windows
            assert await f.readlines() == ["two\n", "three\n", "four"]
            assert await f.read() == ""

    run(main, backend=backend)


def test_binary_large_roundtrip(tmp_path, backend):
    path = tmp_path / "b.bin"
    data = os.urandom(1 << 20) * 3

    async def main():
        async with await open_file(path, "wb") as f:
            await f.write(data)
            assert await f.truncate(len(data)) == len(data)
        async with await open_file(path, "rb") as f:
            assert await f.read(10) == data[:10]
            await f.seek(-10, os.SEEK_END)
            assert await f.read() == data[-10:]
            await f.seek(0)
            buf = bytearray(5)
            assert await f.readinto(buf) == 5 and bytes(buf) == data[:5]
            assert await f.read() == data[5:]

    run(main, backend=backend)
    assert path.read_bytes() == data


def test_os_errors_pass_through(tmp_path):
    async def main():
        with pytest.raises(FileNotFoundError) as info:
            await open_file(tmp_path / "missing")
        assert info.value.errno == 2
        # Windows refuses to open a directory with EACCES.
        with pytest.raises(PermissionError if sys.platform == "win32" else IsADirectoryError):
            await open_file(tmp_path)

    run(main)


def test_fds_are_close_on_exec(tmp_path):
    async def main():
        async with await open_file(tmp_path / "c", "wb") as f:
            assert not os.get_inheritable(f.wrapped.fileno())

    run(main)


def test_other_fibers_run_during_a_slow_call(tmp_path, backend):
    """A file object whose read blocks for a while: the scheduler keeps going."""
    release = threading.Event()

    class Slow:
        closed = False

        def read(self, size=-1):
            release.wait(5)
            return b"late"

        def close(self):
            self.closed = True

    async def setter():
        await sleep(0.02)
        release.set()

    async def main():
        f = wrap_file(Slow())
        spawn(setter)
        assert await f.read() == b"late"  # the setter fiber ran while the read blocked
        await f.aclose()
        assert f.closed

    run(main, backend=backend)


def test_calls_on_one_file_take_turns(tmp_path):
    inside = []
    overlaps = []

    class Probe:
        closed = False

        def write(self, data):
            inside.append(data)
            if len(inside) > 1:
                overlaps.append(list(inside))
            time.sleep(0.01)
            inside.remove(data)
            return len(data)

        def close(self):
            self.closed = True

    async def main():
        f = wrap_file(Probe())
        async with Group() as group:
            for i in range(5):
                group.spawn(f.write, bytes([i]))
        await f.aclose()

    run(main)
    assert overlaps == []


def test_cancelled_write_completes_and_aclose_still_closes(tmp_path, backend):
    path = tmp_path / "d"

    async def main():
        f = await open_file(path, "wb")
        with CancelScope() as scope:
            scope.cancel()
            await f.write(b"never")  # already cancelled: not started
            pytest.fail("write() should have raised Cancelled")
        with CancelScope() as scope:
            scope.cancel()
            await f.aclose()  # closes even though the scope is cancelled
        assert f.closed

    run(main, backend=backend)
    assert path.read_bytes() == b""


def test_repr_and_double_close(tmp_path):
    async def main():
        f = await open_file(tmp_path / "e", "w")
        assert "AsyncFile" in repr(f)
        await f.aclose()
        await f.aclose()
        with pytest.raises(ValueError):
            await f.write("closed")

    run(main)


# -- the proactor path: io_uring operations instead of worker threads --------------------

needs_uring = pytest.mark.skipif("uring" not in backends(), reason="io_uring is not usable here")


@contextlib.contextmanager
def unbuffered_pipe():
    """(an AsyncFile on a pipe's read end, unbuffered, so reads are kernel operations on io_uring; the write end)."""
    r, w = os.pipe()
    reader = wrap_file(os.fdopen(r, "rb", buffering=0))
    try:
        yield reader, w
    finally:
        reader.wrapped.close()
        os.close(w)


def test_positional_and_unbuffered_calls_on_every_backend(tmp_path, backend):
    """pread/pwrite, and read/readinto/write of an unbuffered file: the same answers on every path."""
    path = tmp_path / "p.bin"
    data = os.urandom(200_000)

    async def main():
        async with await open_file(path, "wb", buffering=0) as f:
            assert await f.write(data) == len(data)
            assert await f.pwrite(b"HEAD", 0) == 4
            assert await f.tell() == len(data)  # pwrite left the position alone
            assert await f.write(b"!") == 1  # at the position, not at pwrite's offset
        async with await open_file(path, "rb") as f:  # buffered: pread goes around the buffer
            assert await f.read(4) == b"HEAD"
            assert await f.pread(6, 100) == data[100:106]
            assert await f.pread(10, len(data) - 3) == data[-3:] + b"!"
            assert await f.pread(10, len(data) + 50) == b""
            assert await f.read(2) == data[4:6]  # pread did not move the position
        async with await open_file(path, "rb", buffering=0) as f:
            assert await f.read(4) == b"HEAD"
            buffer = bytearray(5)
            assert await f.readinto(buffer) == 5 and bytes(buffer) == data[4:9]
            assert await f.readinto(memoryview(buffer)[1:3]) == 2 and bytes(buffer[1:3]) == data[9:11]
            assert await f.read() == data[11:] + b"!"
            assert await f.read(10) == b""
            with pytest.raises(io.UnsupportedOperation):
                await f.write(b"not open for writing")
            with pytest.raises(TypeError):
                await f.readinto(b"read-only")
        async with await open_file(path, "r") as f:
            with pytest.raises(TypeError):
                await f.pread(1, 0)
        async with await open_file(path, "rb") as f:
            with pytest.raises(ValueError):
                await f.pread(1, -1)
        with pytest.raises(ValueError):
            await f.pread(1, 0)  # closed

    run(main, backend=backend)


PROACTOR = "uring" if "uring" in backends() else None  # None: the default, which has IOCP on Windows
needs_proactor = pytest.mark.skipif(PROACTOR is None and not iocp.available(), reason="no proactor here")


@needs_proactor
def test_file_calls_are_kernel_operations_and_keep_the_position_where_there_is_a_proactor(tmp_path):
    """io_uring, or IOCP through a twin handle per operation: no worker thread, and the position moves as it would."""
    path = tmp_path / "k.bin"

    async def main():
        scheduler = current_scheduler()
        assert scheduler.completes_io
        async with await open_file(path, "wb", buffering=0) as f:
            writer = spawn(f.write, b"0123456789")
            await sleep(0)  # the writer has handed its write to the kernel and parked
            in_flight = scheduler.notifier.statistics().operations
            assert await writer.join() == 10 and await f.tell() == 10
        async with await open_file(path, "ab", buffering=0) as f:
            assert await f.write(b"tail") == 4  # appended, whatever the position said
            assert await f.tell() == 14
        async with await open_file(path, "r+b", buffering=0) as f:  # not append: Linux's pwrite appends there
            assert await f.pwrite(b"AB", 0) == 2 and await f.tell() == 0
        async with await open_file(path, "rb", buffering=0) as f:
            assert await f.seek(3) == 3
            assert await f.read(4) == b"3456" and await f.tell() == 7
            assert await f.pread(4, 0) == b"AB23" and await f.tell() == 7
            assert await f.read() == b"789tail"
        async with await open_file(path, "rb") as f:  # read-only: pwrite is the OS's refusal, not a twin's write
            with pytest.raises(OSError):
                await f.pwrite(b"no", 0)
        return in_flight

    assert run(main, backend=PROACTOR) == 1
    assert path.read_bytes() == b"AB23456789tail"


@needs_uring
def test_a_kernel_read_of_a_pipe_is_cancellable_and_loses_nothing():
    """An unbuffered pipe on io_uring: the read waits in the kernel, and cancelling it takes nothing from the pipe."""

    async def main(f, w):
        buffer = bytearray(10)
        with move_on_after(0.05) as scope:
            await f.readinto(buffer)  # nothing to read: only the cancel ends it
        assert scope.cancelled_caught
        os.write(w, b"abc")
        assert await f.read(10) == b"abc"  # the cancelled read consumed nothing
        assert buffer == bytearray(10)  # and wrote nothing into its buffer after it was let go

    with unbuffered_pipe() as (f, w):
        run(main, f, w, backend="uring")


@needs_uring
def test_a_cancel_racing_a_completion_delivers_the_bytes_exactly_once():
    """Data arrives and the reader is cancelled in the same step: the bytes go to the read or stay in the pipe."""

    async def main(f, w):
        got = []

        async def reader():
            got.append(await f.read(10))  # either the bytes (then Cancelled at the next checkpoint) ...
            await sleep(0)

        fiber = spawn(reader)
        await sleep(0)  # the reader parks on its kernel read
        assert poorio.stats().events == 1  # the operation in flight
        os.write(w, b"xyz")
        fiber.cancel()  # no poll in between: the cancel and the completion race in the kernel
        with pytest.raises(poorio.Cancelled):
            await fiber.join()
        if not got:  # ... or nothing read, and the bytes still in the pipe
            got.append(await f.read(10))
        assert got == [b"xyz"]

    with unbuffered_pipe() as (f, w):
        run(main, f, w, backend="uring")


@needs_uring
def test_a_fiber_in_a_kernel_read_is_no_deadlock_and_is_cancelled_when_run_ends():
    """An operation in flight keeps the scheduler waiting; fibers left in one are cancelled and waited for."""

    async def main(f, w, stuck):
        spawn(stuck.read, 1)  # never written: cancelled when main ends
        thread = threading.Thread(target=lambda: (time.sleep(0.05), os.write(w, b"late")))
        thread.start()
        try:
            assert await f.read(10) == b"late"  # no fd watched, no timer: only the operation
        finally:
            thread.join()

    with unbuffered_pipe() as (f, w), unbuffered_pipe() as (stuck, _):
        run(main, f, w, stuck, backend="uring")  # returns: the stuck read was cancelled


@needs_uring
def test_a_second_cancellation_does_not_let_go_of_a_buffer_the_kernel_still_holds():
    """Cancelled twice while in a kernel read: the fiber still resumes only once the operation is over."""

    async def main(f, w):
        seen = {}

        async def reader():
            with CancelScope() as inner:
                seen["inner"] = inner
                try:
                    await f.read(10)
                except poorio.Cancelled:
                    seen["in flight when resumed"] = poorio.stats().events
                    raise

        fiber = spawn(reader)
        await sleep(0)  # parked on its kernel read
        fiber.cancel()  # asks the kernel to stop ...
        seen["inner"].shield = True  # (the cancellation is taken back ...
        seen["inner"].shield = False  # ... and delivered again, to a fiber already waiting for the kernel)
        seen["inner"].cancel()  # ... and neither this nor that may resume it before the kernel is done
        with pytest.raises(poorio.Cancelled):
            await fiber.join()
        assert seen["in flight when resumed"] == 0
        os.write(w, b"kept")
        assert await f.read(10) == b"kept"

    with unbuffered_pipe() as (f, w):
        run(main, f, w, backend="uring")
