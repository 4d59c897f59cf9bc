"""The process's standard streams as poorio streams, without ever changing a flag of an inherited fd.

``poorio.system.stdin()``, ``stdout()`` and ``stderr()`` return the shared
``StdStream`` over fd 0, 1 and 2 (made on first use), with the whole stream
interface: ``read_some``, ``read_line``, ``write_all``...

**Why no O_NONBLOCK.**  An inherited fd shares its *open file description*
-- and with it the ``O_NONBLOCK`` flag -- with the parent shell and every
other process started from the same terminal or pipe; ``dup()`` does not
help, the duplicate shares the description too.  Setting the flag makes
those processes' reads fail with ``EAGAIN`` (a shell, a pager, ``cat``),
and a program that crashes or is killed never gets to clear it.  So poorio
never sets it.  Instead each stream picks one of two ways, by what the fd is:

* **pipes, FIFOs and sockets -- readiness, then one blocking call.**  A
  zero-timeout ``poll(2)`` of the one fd asks whether it is readable
  (writable) right now; if not, the fiber parks in the scheduler until it
  is.  Then one ordinary ``read`` (``write``) that the readiness says will
  not block.  A write is
  cut to ``PIPE_BUF`` bytes, the amount a writable pipe is guaranteed to
  take at once.  The one way this can block the scheduler: another process
  reading (writing) the *same* pipe takes the data (the room) between the
  readiness and the call -- pipes shared by two concurrent readers are rare,
  and even then the wait lasts only until data (room) comes.
* **everything else -- the worker pool.**  Regular files are always
  "ready" (epoll refuses them) and their reads wait for the disk; terminals
  poll, but a blocking read after readiness can still wait for a whole line
  in canonical mode, and ``/dev/null`` and other character devices cannot
  be registered at all.  So each call is an ordinary blocking ``read`` or
  ``write`` in a worker thread (``poorio.threads``).  A cancelled read stops
  waiting at once, but its thread stays in ``read`` until input comes, and
  what it then reads is lost; writes are not cancellable half-way.

Either way the fd stays exactly as inherited, so nothing needs restoring at
exit, however the program ends.  If the fd *was* already non-blocking (a
parent left it so), ``EAGAIN`` is handled by waiting for readiness.

``close()`` detaches the stream (fibers waiting on it wake with
``ClosedResourceError``) but never closes fd 0, 1 or 2: ``print`` and
``input`` keep working.  poorio does not buffer: flush ``sys.stdout``
before mixing ``print`` with ``stdout().write_all``.

What this module does not do: terminal modes (raw, echo), encodings (the
streams carry bytes), or Windows consoles (there every call goes to the
worker pool).
"""

from __future__ import annotations

import os
import stat

from .errors import BusyResourceError, ClosedResourceError
from .platform import READABLE, WRITABLE, new_pool
from .platform.facts import POLLS_PIPES
from ._core import notify_closing
from .streams import DEFAULT_READ_SIZE, Stream, byte_view, check_read_size, writable_view
from .threads import run_in_thread
from ._core.traps import checkpoint, wait_readable, wait_writable

__all__ = ["StdStream", "stdin", "stdout", "stderr", "POLL", "THREAD"]

POLL = "poll"  # readiness, then one blocking syscall
THREAD = "thread"  # one blocking syscall in the worker pool
_POSIX_PIPE_BUF = 512  # the least PIPE_BUF POSIX allows, when fpathconf cannot tell
_FAIR_EVERY = 32  # calls in a row without parking before a stream yields to other fibers


class StdStream(Stream):
    """A stream over an inherited fd (0, 1, 2 or another) that never changes the fd's flags; it does not own the fd.

    ``how`` is ``POLL`` or ``THREAD`` (see the module docstring); it is
    chosen from the fd's type unless given.
    """

    __slots__ = ("_fd", "_how", "_chunk", "_reading", "_writing", "_rprobe", "_wprobe", "_streak")

    def __init__(self, fd: int, how: str | None = None) -> None:
        """
        Raises:
            OSError: ``fstat`` failed (``EBADF``: the fd is not open).
        """
        self._init_stream()
        mode = os.fstat(fd).st_mode  # also checks that the fd is open
        if how is None:
            pollable = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
            how = POLL if pollable and POLLS_PIPES else THREAD
        elif how not in (POLL, THREAD):
            raise ValueError(f"how must be POLL or THREAD, not {how!r}")
        self._fd = fd  # -1 once detached
        self._how = how
        self._chunk = _pipe_buf(fd) if how == POLL else None  # the most one write_some hands the kernel
        self._reading = False  # a fiber is in read_some/read_into (two at once is an error)
        self._writing = False
        self._rprobe = self._wprobe = None  # one-fd poll(2) sets asking "ready right now?"
        if how == POLL:
            self._rprobe = _probe(fd, READABLE)
            self._wprobe = _probe(fd, WRITABLE)
        self._streak = 0  # calls in a row that did not park

    @property
    def how(self) -> str:
        """``POLL`` or ``THREAD``: how this stream waits (see the module docstring)."""
        return self._how

    async def read_some(self, max_bytes: int = DEFAULT_READ_SIZE) -> bytes:
        """Up to ``max_bytes`` bytes from one ``read``; ``b""`` means end of input.

        Raises:
            ClosedResourceError: the stream was closed (detached).
            BusyResourceError: another fiber is reading it.
            OSError: from ``read``, unmodified.
            Cancelled: the fiber was cancelled while it waited.
        """
        max_bytes = check_read_size(max_bytes)
        if self._rbuf:
            return self._take(max_bytes)
        fd = self._enter("_reading")
        try:
            if self._how == THREAD:
                return await run_in_thread(_read_blocking, fd, max_bytes, cancellable=True)
            await self._pace()
            while True:
                if not _ready_now(self._rprobe):
                    await wait_readable(fd)
                    self._check_open()
                try:
                    return os.read(fd, max_bytes)
                except BlockingIOError:
                    pass  # non-blocking already, and another reader was first: wait again
        finally:
            self._reading = False

    async def read_into(self, buffer) -> int:
        """Read into ``buffer``; return the count, 0 at end of input (one ``read``, then a copy).

        Raises:
            As ``read_some``.
        """
        view = writable_view(buffer)
        data = await self.read_some(len(view))
        view[: len(data)] = data
        return len(data)

    async def write_some(self, data) -> int:
        """Write a prefix of ``data`` with one ``write``; return its length.

        Raises:
            ClosedResourceError: the stream was closed (detached).
            BusyResourceError: another fiber is writing it.
            BrokenResourceError: an earlier ``write_all`` was interrupted part-way.
            OSError: from ``write``, unmodified (``EPIPE``: the reader is gone).
            Cancelled: the fiber was cancelled while it waited (nothing was written).
        """
        self._check_writable()
        fd = self._enter("_writing")
        try:
            if self._how == THREAD:
                return await run_in_thread(_write_blocking, fd, data)
            view = byte_view(data)
            try:
                await self._pace()
                while True:
                    if not _ready_now(self._wprobe):
                        await wait_writable(fd)
                        self._check_open()
                    try:
                        return os.write(fd, view[: self._chunk])
                    except BlockingIOError:
                        pass  # non-blocking already, and another writer took the room
            finally:
                view.release()
        finally:
            self._writing = False

    async def _pace(self) -> None:
        # Calls that find the fd ready never park: after a run of them, let
        # the other fibers run once -- before the syscall, so nothing is lost.
        self._streak += 1
        if self._streak >= _FAIR_EVERY:
            self._streak = 0
            await checkpoint()
            self._check_open()

    def _enter(self, flag: str) -> int:
        self._check_open()
        if getattr(self, flag):
            raise BusyResourceError(f"another fiber is already {flag[1:]} fd {self._fd}")
        setattr(self, flag, True)
        return self._fd

    def _check_open(self) -> None:
        if self._fd < 0:
            raise ClosedResourceError("the standard stream was closed")

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        """Detach the stream: waiting fibers wake with ``ClosedResourceError``; the fd itself stays open."""
        fd = self._fd
        if fd < 0:
            return
        self._fd = -1
        self._rbuf = b""
        for probe in (self._rprobe, self._wprobe):
            if probe is not None:
                probe.close()
        if self._how == POLL:
            try:
                notify_closing(fd)
            except RuntimeError:
                pass  # no scheduler in this thread: nobody waits

    def __repr__(self) -> str:
        return f"<StdStream fd={self._fd} {self._how}{' closed' if self._fd < 0 else ''}>"


def _probe(fd: int, events: int):
    """A one-fd poll(2) set: ``poll`` needs no kernel object, so it costs no fd."""
    pool = new_pool(1, "poll")
    pool.add(fd, events)
    return pool


def _ready_now(probe) -> bool:
    return bool(probe.cycle(0))


def _pipe_buf(fd: int) -> int:
    try:
        return os.fpathconf(fd, "PC_PIPE_BUF") or _POSIX_PIPE_BUF
    except (OSError, ValueError, AttributeError):
        return _POSIX_PIPE_BUF  # a socket, or no fpathconf (Windows)


def _read_blocking(fd: int, n: int) -> bytes:
    """One ``read`` in a worker; an fd someone left non-blocking is waited on in the thread."""
    while True:
        try:
            return os.read(fd, n)
        except BlockingIOError:
            _wait_in_thread(fd, READABLE)


def _write_blocking(fd: int, data) -> int:
    while True:
        try:
            return os.write(fd, data)
        except BlockingIOError:
            _wait_in_thread(fd, WRITABLE)


def _wait_in_thread(fd: int, events: int) -> None:
    with new_pool(1) as pool:
        pool.add(fd, events)
        pool.cycle(None)


_streams = {}  # fd -> its shared StdStream; a closed one is replaced on the next call


def _shared(fd: int) -> StdStream:
    stream = _streams.get(fd)
    if stream is None or stream.closed:
        stream = _streams[fd] = StdStream(fd)
    return stream


def stdin() -> StdStream:
    """The process's standard input (fd 0) as a stream, shared by every caller.

    Raises:
        OSError: fd 0 is not open (``EBADF``).
    """
    return _shared(0)


def stdout() -> StdStream:
    """The process's standard output (fd 1) as a stream, shared by every caller.

    Raises:
        OSError: fd 1 is not open (``EBADF``).
    """
    return _shared(1)


def stderr() -> StdStream:
    """The process's standard error (fd 2) as a stream, shared by every caller.

    Raises:
        OSError: fd 2 is not open (``EBADF``).
    """
    return _shared(2)
