"""Byte streams as IO objects: one syscall per ``read_some``/``write_some``, exact helpers on top.

A stream owns one non-blocking, close-on-exec fd (a socket, a pipe end) and
never hands it around.  ``read_some`` and ``write_some`` make one syscall and
return what the kernel did; a stream parks on readiness when the kernel says
``EAGAIN`` -- and, for reads, also *before* the syscall when the previous
read came back short: the kernel's buffer was emptied then, so the next
read would most likely say ``EAGAIN`` (request/response traffic), and
waiting first saves that syscall (libuv does the same).  ``write_all``,
``read_exactly``, ``read_until`` and ``read_line`` are built on them and
named for what they do.  Errors from the kernel are raised as the
``OSError`` it gave (``ECONNRESET``, ``EPIPE``...).

Streams reach the kernel's readiness through a *wait hook*
(``poorio.waithooks``, whose names this module re-exports): ``FIBERS`` (the
default) parks the current fiber on the scheduler; ``BLOCKING`` blocks the
thread, so the same stream class runs without any scheduler -- drive its
coroutines with ``blocking(...)``.  A stream asks its hook once, at birth,
for the two awaitables it waits on (``WaitHook.waits``), and awaits them
ever after.

Where readiness cannot wait on a pipe (WSAPoll, on Windows), a stream works
the other way round: ``ProactorStream`` hands the kernel the buffer and
parks until the operation completes (the scheduler's proactor: a
completion port there, io_uring on Linux).  Same interface, same helpers.

What this module does not do: buffer writes, buffer reads beyond the one
delimiter search of ``read_until`` (bytes read past a delimiter are kept and
handed out first), or know anything about sockets (see ``poorio.net``).
"""

from __future__ import annotations

import os

from ._core.traps import current_scheduler, suspend
from .errors import BrokenResourceError, BusyResourceError, ClosedResourceError, IncompleteReadError, LimitOverrunError
from .waithooks import BLOCKING, FIBERS, FdWaits, WaitHook, blocking

__all__ = [
    "Stream",
    "FdStream",
    "ProactorStream",
    "BrokenResourceError",
    "WaitHook",
    "FdWaits",
    "FIBERS",
    "BLOCKING",
    "blocking",
    "pipe",
    "DEFAULT_READ_SIZE",
    "READ_SIZE_LIMIT",
    "byte_view",
    "check_read_size",
    "writable_view",
]

DEFAULT_READ_SIZE = 65536  # what read_some asks the kernel for when not told
_FAIR_EVERY = 32  # immediate successes in a row before a stream yields to other fibers
# The most one read asks the kernel for: read_some(n) returns *up to* n bytes,
# and CPython allocates all n before the syscall, so read_some(2**40) would
# otherwise fail with MemoryError (or take gigabytes) instead of reading.
READ_SIZE_LIMIT = 1 << 22
# read_until's buffer starts at this much room (or less, under max_size) and
# doubles as a long line arrives, so it is copied O(log n) times, not O(n).
_FIRST_LINE_ROOM = 4096


def check_read_size(value, name: str = "max_bytes") -> int:
    """``value`` as a read size: an int >= 1 (bools refused), clipped to ``READ_SIZE_LIMIT``.

    For ``read_some`` implementations: call it before handing out buffered bytes.

    Raises:
        TypeError: ``value`` is not an int.
        ValueError: ``value`` is < 1.
    """
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, not {value!r}")
    value = value.__index__()
    if value < 1:
        raise ValueError(f"{name} must be >= 1, not {value!r}")
    return value if value <= READ_SIZE_LIMIT else READ_SIZE_LIMIT


def _count(value, name: str) -> int:
    """``value`` as a count of bytes: an int >= 0 (bools refused), with no upper bound."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, not {value!r}")
    value = value.__index__()
    if value < 0:
        raise ValueError(f"{name} must be >= 0, not {value!r}")
    return value


def writable_view(buffer) -> memoryview:
    """A flat view of ``buffer`` for ``read_into`` implementations: writable and not empty.

    Raises:
        TypeError: ``buffer`` is not a writable bytes-like object.
        ValueError: ``buffer`` is empty.
    """
    try:
        view = byte_view(buffer)
    except TypeError:
        raise TypeError(f"buffer must be a writable bytes-like object, not {type(buffer).__name__}") from None
    if view.readonly:
        raise TypeError(f"buffer must be writable; a {type(buffer).__name__} is read-only")
    if not len(view):
        raise ValueError("read_into() needs a non-empty buffer")
    return view


def byte_view(data) -> memoryview:
    """A flat ``memoryview`` of bytes over ``data``, without copying."""
    view = memoryview(data)
    # Cast only when needed: PyPy copies a cast view byte by byte when it
    # is handed to a syscall (seconds per megabyte).
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


class Stream:
    """The shared byte-stream interface: helpers over three primitives a subclass supplies.

    A subclass implements ``read_some``, ``read_into``, ``write_some`` and
    ``close``/``aclose``, honouring ``_rbuf`` (bytes read ahead by
    ``read_until``, handed out first) and ``_broken`` (set when a
    ``write_all`` was interrupted).  Everything else is built here.
    """

    __slots__ = ("_rbuf", "_broken")

    def _init_stream(self) -> None:
        self._rbuf = b""  # bytes read past a delimiter, handed out before any syscall
        self._broken = None  # why writing is no longer possible, after an interrupted write_all

    async def read_some(self, max_bytes: int = DEFAULT_READ_SIZE) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` means end of stream."""
        raise NotImplementedError

    async def read_into(self, buffer) -> int:
        """Read into ``buffer``; return the count, 0 at end of stream."""
        raise NotImplementedError

    async def write_some(self, data) -> int:
        """Write a prefix of ``data``; return its length."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the stream at once."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close the stream (see ``close``); never waits for plain streams."""
        self.close()

    def _take(self, n: int) -> bytes:
        data = self._rbuf
        if n >= len(data):
            self._rbuf = b""
            return data
        self._rbuf = data[n:]
        return data[:n]

    def _check_writable(self) -> None:
        if self._broken is not None:
            raise BrokenResourceError(self._broken)

    # -- helpers built on the primitives --------------------------------------------

    async def write_all(self, data) -> None:
        """Write every byte of ``data``, calling ``write_some`` until it is all out.

        Cancellation (or any error) after part of ``data`` went out leaves the
        peer with a prefix the caller cannot know the length of; so the write
        side is then *broken*: later writes raise ``BrokenResourceError``
        (reading and closing still work).  Interrupted before the first byte
        went out, the stream stays usable.

        Raises:
            ClosedResourceError, BrokenResourceError, OSError, Cancelled: as ``write_some``.
        """
        sent = 0
        if type(data) is bytes and data:  # most writes go out whole, in one syscall: no view needed
            sent = await self.write_some(data)
            if sent == len(data):
                return
        await self._write_rest(data, sent)

    async def _write_rest(self, data, sent: int) -> None:
        """``write_all`` once ``sent`` bytes of ``data`` are out: the rest, through a view."""
        view = byte_view(data)  # slices of a view share memory: no copies
        total = len(view)
        try:
            while sent < total:
                sent += await self.write_some(view[sent:])
        except BaseException:
            if 0 < sent < total:
                self._broken = f"a write_all was interrupted after {sent} of {total} bytes"
            raise
        finally:
            view.release()

    async def read_exactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes.

        The buffer grows as the bytes come (doubling), so a huge ``n`` costs
        only what actually arrives.

        Raises:
            IncompleteReadError: the stream ended first; ``.partial`` holds what came.
            TypeError: ``n`` is not an int.
            ValueError: ``n`` is negative.
            ClosedResourceError, OSError, Cancelled: as ``read_some``.  After a
                cancellation the bytes read so far are lost.
        """
        n = _count(n, "n")
        buf = bytearray(min(n, READ_SIZE_LIMIT))
        got = 0
        while got < n:
            if got == len(buf):  # full: make room for more, up to n
                buf += bytes(min(n - got, len(buf)))
            with memoryview(buf) as view, view[got:] as room:
                count = await self.read_into(room)
            if not count:
                raise IncompleteReadError(bytes(buf[:got]), n)
            got += count
        return bytes(buf)

    async def read_until(self, delimiter: bytes, max_size: int) -> bytes:
        """Bytes up to and including ``delimiter``, at most ``max_size`` of them.

        Never reads more than ``max_size`` bytes ahead; what arrived past the
        delimiter is kept for the next read.  A long line is read into one
        growing buffer and only the new bytes are searched: the cost is
        linear in its length, however small the pieces it arrives in.

        Raises:
            LimitOverrunError: ``max_size`` bytes arrived without a delimiter
                (they stay buffered: ``read_some`` returns them).
            IncompleteReadError: the stream ended first; ``.partial`` holds what came.
            TypeError: ``delimiter`` is not bytes, or ``max_size`` not an int.
            ValueError: ``delimiter`` is empty, or ``max_size`` < 1.
            ClosedResourceError, OSError, Cancelled: as ``read_some`` (on
                cancellation the bytes read so far stay buffered).
        """
        if not isinstance(delimiter, (bytes, bytearray)):
            raise TypeError(f"delimiter must be bytes, not {delimiter!r}")
        if not delimiter:
            raise ValueError("read_until() needs a non-empty delimiter")
        max_size = _count(max_size, "max_size")
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, not {max_size!r}")
        held = self._rbuf
        end = held.find(delimiter, 0, max_size)
        if end >= 0:  # the common case: the line is here already, no syscall, no buffer
            end += len(delimiter)
            self._rbuf = held[end:]
            return held[:end]
        if len(held) >= max_size:
            raise LimitOverrunError(f"no {delimiter!r} within {max_size} bytes")
        return await self._read_until_slow(bytes(delimiter), max_size)

    async def _read_until_slow(self, delimiter: bytes, max_size: int) -> bytes:
        """``read_until`` once the bytes at hand hold no delimiter: read into one growing buffer."""
        buf = bytearray(self._rbuf)
        self._rbuf = b""
        filled = len(buf)
        width = len(delimiter)
        buf += bytes(min(max_size, filled + _FIRST_LINE_ROOM) - filled)
        try:
            while True:
                if filled == len(buf):  # full: double, up to max_size
                    buf += bytes(min(max_size, 2 * filled) - filled)
                with memoryview(buf) as view, view[filled:] as room:
                    count = await self.read_into(room)
                if not count:
                    raise IncompleteReadError(bytes(buf[:filled]), None)
                start = max(0, filled - width + 1)  # the delimiter may straddle two reads
                filled += count
                end = buf.find(delimiter, start, filled)
                if end >= 0:
                    end += width
                    with memoryview(buf) as view:
                        self._rbuf = view[end:filled].tobytes()
                        return view[:end].tobytes()
                if filled >= max_size:
                    raise LimitOverrunError(f"no {delimiter!r} within {max_size} bytes")
        except IncompleteReadError:
            raise
        except BaseException:  # an overrun, an error, a cancellation: what came stays buffered
            with memoryview(buf) as view:
                self._rbuf = view[:filled].tobytes()
            raise

    async def read_line(self, max_size: int = DEFAULT_READ_SIZE) -> bytes:
        """One line, ending in ``b"\\n"``; at end of stream the unterminated rest (``b""``: no more).

        Raises:
            LimitOverrunError: ``max_size`` bytes arrived without a newline.
            TypeError: ``max_size`` is not an int.
            ValueError: ``max_size`` is < 1.
            ClosedResourceError, OSError, Cancelled: as ``read_some``.
        """
        try:
            return await self.read_until(b"\n", max_size)
        except IncompleteReadError as end:
            return end.partial

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class _OwnsFd(Stream):
    """A stream that owns one fd (or Windows HANDLE), -1 once closed."""

    __slots__ = ("_fd",)

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._fd < 0

    def fileno(self) -> int:
        """The fd (a HANDLE for a Windows pipe), for interop; do not read or close it yourself."""
        return self._fd

    def _release_fd(self) -> int:
        """Mark the stream closed and drop what was read ahead; the fd it held (-1: it was closed already)."""
        fd = self._fd
        self._fd = -1
        self._rbuf = b""
        return fd

    def __repr__(self) -> str:
        return f"<{type(self).__name__} fd={self._fd}{' closed' if self._fd < 0 else ''}>"


class FdStream(_OwnsFd):
    """A stream over a kernel fd: a pipe end here, a socket in ``poorio.net``; it owns the fd.

    ``read_some``/``read_into``/``write_some`` make one non-blocking syscall
    and park on the wait hook only on ``EAGAIN``.  Subclasses swap the
    syscalls (``_recv``, ``_recv_into``, ``_send``, ``_close_fd``).

    One fiber may read while another writes; two fibers reading (or two
    writing) at once get ``BusyResourceError`` from the second wait.
    Regular files are not pollable: use ``poorio.open_file`` for them.
    Writing to a pipe whose reader is gone raises ``BrokenPipeError``
    (``EPIPE``); Python ignores ``SIGPIPE`` by default, an embedding program
    must do so too.
    """

    __slots__ = ("_wait", "_waits", "_streak", "_drained")

    def __init__(self, fd: int, *, wait: WaitHook | None = None) -> None:
        os.set_blocking(fd, False)
        self._init_fd(fd, wait)

    def _init_fd(self, fd: int, wait: WaitHook | None) -> None:
        self._init_stream()
        self._fd = fd  # -1 once closed
        self._wait = FIBERS if wait is None else wait
        self._waits = self._wait.waits(fd)  # awaited on every wait; see WaitHook.waits
        self._streak = 0  # syscalls in a row that did not have to wait
        self._drained = False  # the last read_some got less than it asked for

    # -- the primitives: one syscall each ------------------------------------------

    async def read_some(self, max_bytes: int = DEFAULT_READ_SIZE) -> bytes:
        """Up to ``max_bytes`` bytes, from one ``recv``/``read``; ``b""`` means end of stream.

        Bytes left over from ``read_until`` are returned first, without a
        syscall.  One read asks the kernel for at most ``READ_SIZE_LIMIT``
        bytes, however large ``max_bytes`` is.

        Raises:
            ClosedResourceError: the stream is closed, or was closed while waiting.
            OSError: from the kernel, unmodified (e.g. ``ECONNRESET``).
            Cancelled: the fiber was cancelled while it waited.
            TypeError: ``max_bytes`` is not an int.
            ValueError: ``max_bytes`` is < 1.
        """
        if max_bytes.__class__ is not int or not 0 < max_bytes <= READ_SIZE_LIMIT:
            max_bytes = check_read_size(max_bytes)
        if self._rbuf:
            return self._take(max_bytes)
        if self._streak >= _FAIR_EVERY or self._fd < 0:  # rare: a call saved on the hot path
            await self._fair()
        # After a short read the kernel's buffer was empty, so this read
        # would most likely fail with EAGAIN (request/response traffic): wait
        # first, as libuv does after a partial read.  The fd is still
        # registered, so a wrong guess costs a trip through the loop and no
        # syscall; a full read (bulk traffic) goes back to trying first.
        # (The wait is written out here, not called: this is the hottest path.)
        wait = self._drained
        while True:
            if wait:
                self._streak = 0
                await self._waits.readable
                if self._fd < 0:  # closed by another fiber after ours was woken
                    raise ClosedResourceError(f"{type(self).__name__} was closed")
            try:
                data = self._recv(max_bytes)
            except BlockingIOError:
                wait = True
            else:
                self._streak += 1
                self._drained = 0 < len(data) < max_bytes
                return data

    async def read_into(self, buffer) -> int:
        """Read into ``buffer`` (a writable bytes-like) with one ``recv_into``; 0 means end of stream.

        Raises:
            ClosedResourceError: the stream is closed, or was closed while waiting.
            OSError: from the kernel, unmodified.
            Cancelled: the fiber was cancelled while it waited.
        """
        view = writable_view(buffer)
        if self._rbuf:
            n = min(len(view), len(self._rbuf))
            view[:n] = self._take(n)
            return n
        if self._streak >= _FAIR_EVERY or self._fd < 0:  # rare: a call saved on the hot path
            await self._fair()
        while True:
            try:
                n = self._recv_into(view)
            except BlockingIOError:
                await self._park_reader()
            else:
                self._streak += 1
                return n

    async def write_some(self, data) -> int:
        """Write a prefix of ``data`` with one ``send``/``write``; return how many bytes went out.

        Raises:
            ClosedResourceError: the stream is closed, or was closed while waiting.
            BrokenResourceError: an earlier ``write_all`` was interrupted part-way.
            OSError: from the kernel, unmodified (``EPIPE``, ``ECONNRESET``...).
            Cancelled: the fiber was cancelled while it waited (nothing was written).
        """
        if self._broken is not None:
            raise BrokenResourceError(self._broken)
        if self._streak >= _FAIR_EVERY or self._fd < 0:  # rare: a call saved on the hot path
            await self._fair()
        while True:
            try:
                n = self._send(data)
            except BlockingIOError:
                await self._park_writer()
            else:
                self._streak += 1
                return n

    async def write_all(self, data) -> None:
        """Write every byte of ``data`` (see ``Stream.write_all``).

        Raises:
            ClosedResourceError, BrokenResourceError, OSError, Cancelled: as ``write_some``.
        """
        # The common case written out: bytes that go out whole with one
        # syscall, without a write_some coroutine or a view.  Anything else
        # -- a partial write, a wait, a turn for fairness -- takes the loop.
        if type(data) is bytes and data and self._broken is None and self._streak < _FAIR_EVERY and self._fd >= 0:
            try:
                sent = self._send(data)
            except BlockingIOError:
                sent = 0
            else:
                self._streak += 1
                if sent == len(data):
                    return
            await self._write_rest(data, sent)
        else:
            await Stream.write_all(self, data)

    async def _park_reader(self) -> None:
        """Wait until the fd is readable (the kernel said EAGAIN, or will); then it must still be open."""
        self._streak = 0
        await self._waits.readable
        if self._fd < 0:  # closed by another fiber after ours was woken
            raise ClosedResourceError(f"{type(self).__name__} was closed")

    async def _park_writer(self) -> None:
        """Wait until the fd is writable; then it must still be open."""
        self._streak = 0
        await self._waits.writable
        if self._fd < 0:  # closed by another fiber after ours was woken
            raise ClosedResourceError(f"{type(self).__name__} was closed")

    async def _fair(self) -> None:
        # Syscalls that never wait never yield: after a run of them, yield once
        # -- *before* the syscall, so a cancellation here loses no data.
        if self._fd < 0:
            raise ClosedResourceError(f"{type(self).__name__} is closed")
        if self._streak >= _FAIR_EVERY:
            self._streak = 0
            await self._wait.checkpoint()
            if self._fd < 0:
                raise ClosedResourceError(f"{type(self).__name__} was closed")

    def close(self) -> None:
        """Close the stream now; fibers waiting on it wake with ``ClosedResourceError``.

        Closing twice is fine.  The waiters are told *before* the fd is
        closed, so no registration outlives it and a reused fd number is
        never confused with this one.
        """
        fd = self._release_fd()
        if fd < 0:
            return
        try:
            self._wait.closing(fd)
        finally:
            self._close_fd(fd)

    def _recv(self, n: int) -> bytes:
        return os.read(self._fd, n)

    if hasattr(os, "readv"):

        def _recv_into(self, view) -> int:
            return os.readv(self._fd, (view,))

    else:  # PyPy 3.9 has no os.readv: read, then copy once

        def _recv_into(self, view) -> int:
            data = os.read(self._fd, len(view))
            view[: len(data)] = data
            return len(data)

    def _send(self, data) -> int:
        return os.write(self._fd, data)

    def _close_fd(self, fd: int) -> None:
        os.close(fd)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", -1)
        if fd >= 0:
            self._finalize(fd, lambda: os.close(fd))

    def _finalize(self, fd: int, close) -> None:
        """Close a stream nobody closed, once no wait registration holds its fd.

        A finalizer runs at any moment (mid-bookkeeping, or in another
        thread), so it must not touch the pool itself: ``close_later`` hands
        the fd to the notifier that may hold it.
        """
        waits = getattr(self, "_waits", None)
        if waits is None:
            close()
        else:
            waits.close_later(close)


class ProactorStream(_OwnsFd):
    """A stream over a pipe end whose reads and writes are operations the kernel completes.

    Where readiness cannot wait on pipes -- WSAPoll, on Windows -- a pipe is
    read and written the other way round: the fiber hands the kernel a
    buffer and parks until it is done (IOCP there; io_uring on Linux works
    the same way).  There is no readiness round trip and no ``EAGAIN``: a
    read returns what the kernel read, a write what it wrote.  A cancelled
    operation is asked to stop, and the fiber waits until the kernel has
    let go of the buffer (see ``poorio._core.fiber``).

    It owns the fd (a Windows HANDLE there) and closes it with ``close_fd``.
    One fiber may read while another writes; a second reader (or writer)
    at once gets ``BusyResourceError``.  Needs a scheduler whose
    ``completes_io`` is true.
    """

    __slots__ = ("_close_fd", "_reading", "_writing", "_scheduler", "_scratch")

    def __init__(self, fd: int, *, close_fd=os.close) -> None:
        self._init_stream()
        self._fd = fd  # -1 once closed
        self._close_fd = close_fd
        self._reading = None  # the read in flight (an Operation), if any
        self._writing = None
        self._scheduler = None  # the one whose proactor has seen the fd: told when it closes
        # read_some's buffer, kept: a fresh one zeroed per read costs more
        # than the read.  A read in flight holds its buffer anyway, so a
        # stream that mostly waits to read holds no more memory for it.
        self._scratch = None

    async def _operate(self, reading: bool, buffer) -> int:
        fd = self._fd
        if fd < 0:
            raise ClosedResourceError(f"{type(self).__name__} is closed")
        if (self._reading if reading else self._writing) is not None:
            raise BusyResourceError(f"another fiber is already {'reading' if reading else 'writing'} fd {fd}")
        scheduler = current_scheduler()
        if scheduler is not self._scheduler:
            if self._scheduler is not None:  # a Windows handle belongs to one completion port for good
                raise RuntimeError(f"{self!r} belongs to the scheduler that first used it, not this one")
            self._scheduler = scheduler

        def start(susp) -> None:
            if reading:
                self._reading = susp.start_read(fd, buffer, -1)
            else:
                self._writing = susp.start_write(fd, buffer, -1)

        try:
            return await suspend(start, self)
        except OSError as error:
            if self._fd < 0:  # closed under the operation: the kernel's ECANCELED is ours to name
                raise ClosedResourceError(f"{type(self).__name__} was closed") from error
            raise
        finally:
            if reading:
                self._reading = None
            else:
                self._writing = None

    async def read_some(self, max_bytes: int = DEFAULT_READ_SIZE) -> bytes:
        """Up to ``max_bytes`` bytes, from one kernel read; ``b""`` means end of stream.

        Raises:
            ClosedResourceError: the stream is closed, or was closed while reading.
            BusyResourceError: another fiber is reading.
            OSError: from the kernel, unmodified.
            Cancelled: the fiber was cancelled (then nothing was read).
        """
        if max_bytes.__class__ is not int or not 0 < max_bytes <= READ_SIZE_LIMIT:
            max_bytes = check_read_size(max_bytes)
        if self._rbuf:
            return self._take(max_bytes)
        buffer = self._scratch
        if buffer is None or len(buffer) != max_bytes:
            buffer = self._scratch = bytearray(max_bytes)
        n = await self._operate(True, buffer)  # one reader at a time, and it waits for its completion
        return bytes(buffer) if n == max_bytes else bytes(memoryview(buffer)[:n])

    async def read_into(self, buffer) -> int:
        """Read into ``buffer`` (a writable bytes-like) with one kernel read; 0 means end of stream.

        Raises:
            As ``read_some``.
        """
        view = writable_view(buffer)
        if self._rbuf:
            n = min(len(view), len(self._rbuf))
            view[:n] = self._take(n)
            return n
        if not len(view):
            return 0
        return await self._operate(True, view)

    async def write_some(self, data) -> int:
        """Write a prefix of ``data`` with one kernel write; return how many bytes went out.

        Raises:
            ClosedResourceError: the stream is closed, or was closed while writing.
            BrokenResourceError: an earlier ``write_all`` was interrupted part-way.
            BusyResourceError: another fiber is writing.
            OSError: from the kernel, unmodified (``EPIPE``...).
            Cancelled: the fiber was cancelled (some bytes may have gone out
                if the kernel finished first: then the count is returned instead).
        """
        if self._broken is not None:
            raise BrokenResourceError(self._broken)
        if type(data) is not bytes:
            data = byte_view(data)  # bytes go as they are: pinning a read-only view would copy it
        if not len(data):
            return 0
        return await self._operate(False, data)

    def close(self) -> None:
        """Close the stream now; a read or write in flight ends with ``ClosedResourceError``.

        The operations are asked to stop first; each still completes once,
        and its buffer stays the kernel's until then.  Closing twice is fine.
        """
        fd = self._release_fd()
        if fd < 0:
            return
        try:
            for op in (self._reading, self._writing):
                if op is not None:
                    op.interrupt()
            if self._scheduler is not None:
                self._scheduler.notify_closing(fd)  # the number may come back as another handle
        finally:
            self._close_fd(fd)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", -1)
        if fd < 0:
            return
        close, scheduler = self._close_fd, self._scheduler
        # A finalizer runs at any moment, so the proactor is told through
        # the notifier's thread-safe queue, which closes the fd after.
        if scheduler is None or not scheduler.notifier.defer_close(fd, lambda: close(fd)):
            close(fd)


def pipe(*, wait: WaitHook | None = None) -> tuple:
    """A new pipe as ``(reader, writer)`` streams; both ends close-on-exec and non-blocking.

    On Windows, where WSAPoll cannot wait on a pipe, they are
    ``ProactorStream``s over an overlapped pipe (IOCP), for fibers only:
    ``wait`` must be left alone there.

    Raises:
        OSError: from ``pipe2``/``pipe`` (``CreateNamedPipeW``), unmodified (e.g. ``EMFILE``).
        NotImplementedError: a ``wait`` hook on Windows.
    """
    from .platform.facts import PIPES_ARE_OPERATIONS  # imports socket: not at import poorio

    if PIPES_ARE_OPERATIONS:  # pragma: no cover - Windows (and Wine)
        return overlapped_pipe((True, True), wait)
    r, w = os.pipe()  # os.pipe makes both ends non-inheritable (O_CLOEXEC)
    try:
        return FdStream(r, wait=wait), FdStream(w, wait=wait)
    except BaseException:
        os.close(r)
        os.close(w)
        raise


def overlapped_pipe(overlapped: tuple, wait: WaitHook | None = None) -> tuple:  # pragma: no cover - Windows
    """Windows: (reader, writer) of a new pipe; a ``ProactorStream`` for each end ``overlapped`` names.

    An end that is not overlapped is handed out as its bare HANDLE: it is
    for a child process (see ``iocp.pipe``).
    """
    if wait is not None and wait is not FIBERS:
        raise NotImplementedError("Windows pipes are IOCP operations, which only fibers can wait for")
    from .platform import iocp

    ends = iocp.pipe(overlapped)
    try:
        return tuple(ProactorStream(h, close_fd=iocp.close_handle) if o else h for h, o in zip(ends, overlapped))
    except BaseException:
        for handle in ends:
            iocp.close_handle(handle)
        raise
