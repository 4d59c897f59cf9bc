"""Regular files as async objects: each blocking call runs in the worker pool, so fibers never block the scheduler.

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

The files are opened by Python's ``open``, so their fds are close-on-exec.
OS errors pass through unmodified (``FileNotFoundError``...).

What this module does not do: poll anything, use the kernel's asynchronous
file IO (io_uring, POSIX aio), or make reads of FIFOs and terminals safe
to cancel (use ``poorio.system`` and pipes for those).
"""

from __future__ import annotations

from ._core.cancel import CancelScope
from .sync import Lock
from .threads import run_in_thread

__all__ = ["AsyncFile", "open_file", "wrap_file"]


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

    __slots__ = ("_raw", "_lock")

    def __init__(self, raw) -> None:
        self._raw = raw
        self._lock = Lock()  # one call at a time: a text file is not thread-safe

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

    async def read(self, size: int = -1):
        """Up to ``size`` bytes or characters (``-1``: to the end); empty at end of file.

        Raises:
            OSError: from the read, unmodified.
            ValueError: the file is closed.
        """
        return await self._call(self._raw.read, size)

    async def readinto(self, buffer) -> int:
        """Read into ``buffer`` (binary files); return the count, 0 at end of file.

        Raises:
            OSError: from the read, unmodified.
        """
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
