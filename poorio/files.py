"""Regular files as async objects: the kernel's asynchronous IO where there is some, the worker pool otherwise.

A regular file is always "ready" to the kernel's readiness multiplexers
(epoll refuses it with ``EPERM``; poll says readable and then the read waits
for the disk), so there is nothing to wait on.  ``await open_file(path,
mode)`` opens it with the builtin ``open`` in a worker thread and returns an
``AsyncFile``; every method that may touch the disk (``read``, ``write``,
``seek``, ``tell``, ``flush``...) is one call of the wrapped file object in
a worker thread (``poorio.threads``).

Calls on one ``AsyncFile`` take turns: a fiber that uses the file while
another fiber's call runs waits for it (a lock, first come first served),
since text files are not safe to use from two threads at once.  Calls are
not cancellable half-way (a half-done write would leave the file position
unknown): a cancelled fiber finishes its call and sees ``Cancelled`` at its
next suspension point; one already cancelled does not start a call.
``aclose`` always closes, even in a cancelled fiber.

**Without threads, on io_uring and IOCP.**  Where the scheduler has a
proactor (``Scheduler.completes_io``: the ``uring`` backend, and IOCP
on Windows -- through an overlapped twin of the file's handle made for
each operation, since ``open()`` makes synchronous handles), the calls
that move bytes go to the kernel as operations instead of to a thread:
``pread``/``pwrite`` on any binary file, and ``read(n)``/``readinto``/
``write`` on an unbuffered one (``buffering=0``: an ``io.FileIO``, whose
position is the fd's).  Those *are* cancellable: cancelling asks the
kernel to stop, and the fiber waits for the operation's one completion
before its buffer is let go -- with ``Cancelled`` if the kernel stopped
it, with the result if it had finished (the bytes moved; the scope raises
at the next suspension point).  So reads of a FIFO wrapped unbuffered can
be given up on (on io_uring: Windows cannot reopen a pipe overlapped).
Everything else (text, buffered reads, ``readline``, ``seek``...) stays
in the worker pool.  ``benchmarks/bench_files.py``
measures the difference.

The files are opened by Python's ``open``, so their fds are close-on-exec.
OS errors pass through unmodified (``FileNotFoundError``...).

What this module does not do: poll anything, or use POSIX aio.
"""

from __future__ import annotations

import io
import os

from ._core.cancel import CancelScope
from ._core import notify_closing
from ._core.traps import current_scheduler, suspend
from .platform import file_operand
from .sync import Lock
from .threads import run_in_thread

__all__ = ["AsyncFile", "open_file", "wrap_file"]

_SCRATCH_MAX = 1 << 20  # a read buffer larger than this is not kept between reads


async def open_file(file, mode: str = "r", buffering: int = -1, encoding: str | None = None,
                    errors: str | None = None, newline: str | None = None, closefd: bool = True,
                    opener=None) -> AsyncFile:
    """``open(...)`` in a worker thread; the arguments are the builtin ``open``'s.

    Raises:
        OSError: from ``open``, unmodified (``FileNotFoundError``, ``PermissionError``...).
        ValueError: a bad ``mode`` or argument combination.
        Cancelled: the fiber was cancelled before the file was opened.
    """
    raw = await run_in_thread(open, file, mode, buffering, encoding, errors, newline, closefd, opener)
    return AsyncFile(raw)


def wrap_file(raw) -> AsyncFile:
    """An ``AsyncFile`` over an already open file object (``open(...)``, ``io.BytesIO``...); it takes ownership."""
    return AsyncFile(raw)


class AsyncFile:
    """A file object whose blocking methods are awaited: each runs in the worker pool.

    Async context manager (``async with await open_file(p) as f``) and
    async iterator over lines (``async for line in f``).  ``wrapped`` is the
    underlying file object, for what is not wrapped here.
    """

    __slots__ = ("_raw", "_lock", "_scratch")

    def __init__(self, raw) -> None:
        self._raw = raw
        self._lock = Lock()  # one call at a time: a text file is not thread-safe
        self._scratch = None  # the kernel reads' buffer, kept for the next read of the same size

    @property
    def wrapped(self):
        """The underlying (blocking) file object."""
        return self._raw

    @property
    def name(self):
        return self._raw.name

    @property
    def mode(self) -> str:
        return self._raw.mode

    @property
    def closed(self) -> bool:
        return self._raw.closed

    async def _call(self, method, *args):
        async with self._lock:
            return await run_in_thread(method, *args)

    def _kernel(self, reading: bool) -> bool:
        """Whether this call can be an operation of the scheduler's proactor (an unbuffered binary file).

        Not if the file is not open that way: the file object's own call
        then raises what it always raises (``UnsupportedOperation``).
        """
        raw = self._raw
        return (
            raw.__class__ is io.FileIO
            and (raw.readable() if reading else raw.writable())
            and current_scheduler().completes_io
        )

    def _binary(self, what: str) -> None:
        if isinstance(self._raw, io.TextIOBase):
            raise TypeError(f"{what}() moves bytes: open the file in binary mode")

    async def _operate(self, start, buffer, offset: int) -> int:
        """One proactor operation on the file's fd, in turn with the other calls; the count of bytes moved."""
        async with self._lock:
            return await self._transfer(start, buffer, offset)

    async def _transfer(self, start, buffer, offset: int) -> int:
        """Park on ``start``'s operation on the file's fd (the caller holds the lock); the count of bytes moved."""
        raw = self._raw
        fd = raw.fileno()  # ValueError if closed, as the file object's own call would raise
        writing = start is _start_write
        target, release, positioned = file_operand(fd, writing)
        if release is None:  # the common case: the fd itself, and -1 is its position
            return await suspend(lambda susp: start(susp, target, buffer, offset), _Transfer(raw, start, offset))
        try:
            # A twin handle (Windows): it has no position, so -1 is made the
            # file object's, and the position is moved after, as a read or
            # write would.  An append-mode write goes to the end (-1 there).
            at = offset
            if offset < 0 and not (writing and "a" in raw.mode) and not positioned:
                at = raw.tell()
            count = await suspend(lambda susp: start(susp, target, buffer, at), _Transfer(raw, start, offset))
            if at >= 0 > offset:
                raw.seek(at + count)
            elif at < 0:
                raw.seek(0, os.SEEK_END)  # where an append leaves the position
            return count
        finally:
            notify_closing(target)  # the proactor forgets the handle before its number is free again
            release(target)

    async def _read_op(self, size: int, offset: int) -> bytes:
        """One proactor read of ``size`` bytes, handed out as ``bytes``.

        The buffer is kept for the next read of the same size: a fresh one
        per read costs more than the read on PyPy (a large bytearray is
        allocated and pinned outside the nursery).  Calls take turns, and a
        cancelled read waits for its completion, so one buffer per file is
        never in two operations at once.
        """
        async with self._lock:
            buffer = self._scratch
            if buffer is None or len(buffer) != size:
                buffer = bytearray(size)
                if size <= _SCRATCH_MAX:
                    self._scratch = buffer
            count = await self._transfer(_start_read, buffer, offset)
            return bytes(buffer) if count == size else bytes(buffer[:count])

    async def pread(self, size: int, offset: int) -> bytes:
        """Up to ``size`` bytes from ``offset`` (``os.pread``), leaving the file position alone; empty at the end.

        Binary files only.  It reads the fd, not the file object's buffer:
        ``flush()`` pending writes first.

        Raises:
            OSError: from the read, unmodified.
            ValueError: the file is closed, or ``size`` or ``offset`` is negative.
            TypeError: a text file.
        """
        self._binary("pread")
        if size < 0 or offset < 0:
            raise ValueError(f"pread() needs size and offset >= 0, not {size!r} and {offset!r}")
        if self._raw.readable() and current_scheduler().completes_io:
            return await self._read_op(size, offset)
        return await self._call(_pread, self._raw, size, offset)

    async def pwrite(self, data, offset: int) -> int:
        """Write ``data`` at ``offset`` (``os.pwrite``), leaving the file position alone; the count written.

        Binary files only; like ``os.pwrite`` the count may be short.  It
        writes the fd, around the file object's buffer: ``flush()`` first
        if the two are mixed.

        Raises:
            OSError: from the write, unmodified (``ENOSPC``...).
            ValueError: the file is closed, or ``offset`` is negative.
            TypeError: a text file.
        """
        self._binary("pwrite")
        if offset < 0:
            raise ValueError(f"pwrite() needs an offset >= 0, not {offset!r}")
        if self._raw.writable() and current_scheduler().completes_io:
            return await self._operate(_start_write, data, offset)
        return await self._call(_pwrite, self._raw, data, offset)

    async def read(self, size: int = -1):
        """Up to ``size`` bytes or characters (``-1``: to the end); empty at end of file.

        Raises:
            OSError: from the read, unmodified.
            ValueError: the file is closed.
        """
        if size is not None and size >= 0 and self._kernel(True):
            try:
                return await self._read_op(size, -1)
            except BlockingIOError:
                return None  # a non-blocking fd with nothing to read: FileIO.read's answer
        return await self._call(self._raw.read, size)

    async def readinto(self, buffer) -> int:
        """Read into ``buffer`` (binary files); return the count, 0 at end of file.

        Raises:
            OSError: from the read, unmodified.
        """
        if self._kernel(True):
            try:
                return await self._operate(_start_read, buffer, -1)
            except BlockingIOError:
                return None
        return await self._call(self._raw.readinto, buffer)

    async def readline(self, size: int = -1):
        """One line with its ending (at most ``size`` bytes or characters); empty at end of file.

        Raises:
            OSError: from the read, unmodified.
        """
        return await self._call(self._raw.readline, size)

    async def readlines(self, hint: int = -1) -> list:
        """Every remaining line (about ``hint`` bytes' worth if given) in one worker call.

        Raises:
            OSError: from the read, unmodified.
        """
        return await self._call(self._raw.readlines, hint)

    async def write(self, data) -> int:
        """Write ``data`` (the file object's ``write``: buffered files take all of it); return its length.

        Raises:
            OSError: from the write, unmodified (``ENOSPC``...).
        """
        if self._kernel(False):
            try:
                return await self._operate(_start_write, data, -1)
            except BlockingIOError:
                return None
        return await self._call(self._raw.write, data)

    async def writelines(self, lines) -> None:
        """Write every item of ``lines`` in one worker call.

        Raises:
            OSError: from the write, unmodified.
        """
        await self._call(self._raw.writelines, lines)

    async def seek(self, offset: int, whence: int = 0) -> int:
        """Move the file position (``whence`` as ``os.SEEK_SET``/``SEEK_CUR``/``SEEK_END``); return it.

        Raises:
            OSError: from ``lseek``, unmodified.
        """
        return await self._call(self._raw.seek, offset, whence)

    async def tell(self) -> int:
        """The file position.

        Raises:
            OSError: from ``lseek``, unmodified.
        """
        return await self._call(self._raw.tell)

    async def truncate(self, size: int | None = None) -> int:
        """Cut (or extend) the file to ``size`` bytes (default: the position); return the new size.

        Raises:
            OSError: from ``ftruncate``, unmodified.
        """
        return await self._call(self._raw.truncate, size)

    async def flush(self) -> None:
        """Hand buffered writes to the kernel (not to the disk: that is ``os.fsync``).

        Raises:
            OSError: from the write, unmodified.
        """
        await self._call(self._raw.flush)

    async def aclose(self) -> None:
        """Flush and close the file, after any call in progress; closes even in a cancelled fiber.

        Raises:
            OSError: from the final flush or close, unmodified (the file is closed anyway).
        """
        with CancelScope(shield=True):
            async with self._lock:
                if not self._raw.closed:
                    await run_in_thread(self._raw.close)  # shielded: waited for even when cancelled

    async def __aenter__(self) -> AsyncFile:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncFile:
        return self

    async def __anext__(self):
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    def __repr__(self) -> str:
        return f"<AsyncFile {self._raw!r}>"


def _start_read(susp, fd: int, buffer, offset: int) -> None:
    susp.start_read(fd, buffer, offset)


def _start_write(susp, fd: int, data, offset: int) -> None:
    susp.start_write(fd, data, offset)


class _Transfer:
    """What a fiber in a proactor file operation waits on, as ``dump()`` shows it."""

    __slots__ = ("raw", "start", "offset")

    def __init__(self, raw, start, offset: int) -> None:
        self.raw, self.start, self.offset = raw, start, offset

    def __repr__(self) -> str:
        verb = "read" if self.start is _start_read else "write"
        where = "the position" if self.offset < 0 else f"offset {self.offset}"
        return f"kernel {verb} of {getattr(self.raw, 'name', self.raw)!r} at {where}"


def _pread(raw, size: int, offset: int) -> bytes:
    """``os.pread`` of a file object, in a worker; by seek and read where there is none (Windows)."""
    if hasattr(os, "pread"):
        return os.pread(raw.fileno(), size, offset)
    position = raw.tell()
    try:
        raw.seek(offset)
        return raw.read(size)
    finally:
        raw.seek(position)


def _pwrite(raw, data, offset: int) -> int:
    """``os.pwrite`` of a file object, in a worker; by seek and write where there is none (Windows)."""
    if hasattr(os, "pwrite"):
        return os.pwrite(raw.fileno(), data, offset)
    position = raw.tell()
    try:
        raw.seek(offset)
        count = raw.write(data)
        raw.flush()
        return count
    finally:
        raw.seek(position)
