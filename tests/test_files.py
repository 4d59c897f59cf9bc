"""open_file/AsyncFile on real files: text and binary, seek/tell, line iteration, errors, turns, cancellation, close."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from fiber_helpers import backend, run  # noqa: F401 (fixtures)
from poorio import CancelScope, Group, sleep, spawn
from poorio.files import open_file, wrap_file


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
