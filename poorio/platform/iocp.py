"""IOCP through ctypes: Windows' completion ports, as a proactor with uring.Ring's interface.

An I/O completion port is a kernel queue of finished operations.  A handle
-- a socket, or a pipe or file opened with ``FILE_FLAG_OVERLAPPED`` -- is
*associated* with a port once; every overlapped operation started on it
(``WSARecv``, ``WSASend``, ``AcceptEx``, ``ConnectEx``, ``ReadFile``,
``WriteFile``) then ends as a packet on the port, which
``GetQueuedCompletionStatusEx`` hands out in batches.  The essay in
``uring.py`` states the proactor contract ``Port`` shares with ``Ring``;
what is particular to Windows:

* **The OVERLAPPED is the operation.**  The kernel writes the status and
  byte count into it when the operation ends, and the packet carries its
  address, which is how a completion finds its token.  So each operation
  owns a ctypes OVERLAPPED that must not move or die before the packet is
  dequeued -- like the buffer, it is kept by the port until then.
* **Association is forever.**  A handle belongs to one port until it is
  closed; Windows offers no documented way out.  The port remembers what
  it associated, so ``forget(handle)`` must be called before the handle is
  closed (a new handle may reuse the number).  A handle already associated
  with another port is refused with ``win.ERROR_INVALID_PARAMETER``.
* **Errors come twice.**  A call that fails at once (anything but
  ``win.ERROR_IO_PENDING``) queues no packet; the port then completes the
  operation itself, so every operation still completes exactly once, with
  the ``OSError`` (``winerror`` set) the call returned.  A failure that
  ends a pending operation is read back with ``WSAGetOverlappedResult``
  (sockets) or ``GetOverlappedResult`` (files, pipes).  The end of a pipe
  (``win.ERROR_BROKEN_PIPE``) or a file (``win.ERROR_HANDLE_EOF``) on a read is a
  result of 0, as on POSIX; a cancelled operation's error
  (``win.ERROR_OPERATION_ABORTED``, winerror 995) carries ``errno`` ECANCELED.
* **Only overlapped handles.**  ``os.pipe()`` and ``open()`` make
  synchronous handles, on which an "overlapped" read blocks; ``pipe()`` and
  ``open_file()`` here make handles that work with a port (a named pipe
  pair, as asyncio's ``windows_utils.pipe`` does, and ``CreateFileW``).
  File operations name their offset: -1 means "the pipe's stream" for a
  pipe; for a file it appends on a write and is refused on a read.
* **Accept and connect are extensions.**  ``AcceptEx`` and ``ConnectEx``
  come from ``WSAIoctl(win.SIO_GET_EXTENSION_FUNCTION_POINTER)``; ``AcceptEx``
  needs a fresh socket to accept into and ``win.SO_UPDATE_ACCEPT_CONTEXT``
  after, ``ConnectEx`` a bound socket and ``win.SO_UPDATE_CONNECT_CONTEXT``.
* **Ctrl-C.**  A long wait is made of waits of at most ``SLICE_MS``, as in
  ``wsapoll.py``, so a KeyboardInterrupt lands within a tenth of a second.
* **Relayed, beside WSAPoll.**  The scheduler waits in WSAPoll, and no
  socket becomes readable when a packet arrives.  ``relay(wake)`` gives
  the port a thread that waits in ``GetQueuedCompletionStatusEx`` (with
  the GIL let go), queues what it takes and calls ``wake`` -- a byte to the
  scheduler's wake-up socket.  The thread only moves (address, bytes)
  pairs; the owner finishes the operations in ``completions()``, so the
  bookkeeping has one thread and needs no lock.  An operation that fails
  at once queues no packet, so ``wake`` is called for it too.  ``close``
  posts a packet with the key ``_STOP`` and joins the thread before it
  drains what is left.  The cost is a thread hop per batch of packets,
  which only operations pay: sockets stay on WSAPoll.

No readiness pool here: WSAPoll's ``SocketIoPool`` stays Windows' readiness
backend.  A level-triggered pool on IOCP needs the undocumented AFD poll
ioctl (as trio and wepoll do); the proactor makes readiness unnecessary for
the operations that matter, pipes included, which WSAPoll cannot wait on.
"""

from __future__ import annotations

import ctypes
import heapq
import math
import socket
import struct
import threading
import time
from collections import deque

from ..errors import BackendUnavailableError
from . import _iocp as win
from ._base import DEFAULT_CAPACITY, READABLE, WRITABLE
from ._iocp import (
    available, close_handle, open_file, overlapped_entry_layout, overlapped_layout, pipe, reopen_overlapped, wsabuf_layout,
)
from ._libc import fileno
from ._proactor import ProactorBase, nanoseconds, pin_readable, pin_writable
from ._sockaddr import sockaddr

WSAID_ACCEPTEX, WSAID_CONNECTEX = win.WSAID_ACCEPTEX, win.WSAID_CONNECTEX
SLICE_MS = win.SLICE_MS

__all__ = ["available", "Port", "pipe", "open_file", "reopen_overlapped", "close_handle", "sockaddr", "READABLE", "WRITABLE",
           "overlapped_layout", "overlapped_entry_layout", "wsabuf_layout"]


class _Op:
    """One operation in flight: its token, its OVERLAPPED and whatever must outlive it."""

    __slots__ = ("token", "kind", "handle", "overlapped", "keep", "extra")

    def __init__(self, token, kind: str, handle: int, keep) -> None:
        self.token, self.kind, self.handle, self.keep = token, kind, handle, keep
        self.overlapped = ctypes.create_string_buffer(win.OV_SIZE)
        self.extra = None


class Port(ProactorBase):
    """A proactor on one I/O completion port: submit overlapped operations with a token, wait for them.

    The same interface and contract as ``uring.Ring`` (see uring.py's essay);
    ``fd`` arguments are SOCKETs or overlapped HANDLEs.  Any thread may wait.
    """

    backend = "iocp"
    noun = "port"

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if win.kernel32 is None:
            raise BackendUnavailableError("I/O completion ports are Windows'")
        super().__init__(capacity)
        port = win.CreateIoCompletionPort(win.INVALID_HANDLE, None, 0, 1)
        if not port:
            raise win.error()
        self._port = port
        self._batch = min(capacity, 256)
        self._entries = ctypes.create_string_buffer(self._batch * win.ENTRY.size)
        self._removed = ctypes.c_ulong()
        self._ops: dict = {}  # address of an OVERLAPPED -> _Op
        self._kinds: dict = {}  # associated handle -> GetFileType
        self._timers: list = []  # heap of (deadline, key) of timeout operations
        self._arrived: deque | None = None  # relayed: (OVERLAPPED address, bytes) the relay thread took
        self._wake = None  # relayed: called by the relay thread after each batch
        self._relay: threading.Thread | None = None  # started at the first operation
        self._relay_error: OSError | None = None
        self._signal: threading.Event | None = None

    def relay(self, wake) -> None:
        """Let a thread of the port's own wait on it, and call ``wake()`` after each batch it takes.

        For an owner that waits on something else: the scheduler on
        Windows waits in WSAPoll, which cannot wait on a port, and ``wake``
        makes that wait return.  The relay thread only takes the packets
        off the port; the owner turns them into completions
        (``completions()``, or ``wait``), so the port's bookkeeping stays on
        one thread.  The thread starts with the first operation and ends
        with ``close()``.  (A ``submit_timeout`` is the port's own heap, not
        a packet: it completes in ``wait``, or the next ``completions()``
        after it is due, and wakes nobody.)
        """
        if self._arrived is None:
            self._arrived = deque()
            self._signal = threading.Event()
        self._wake = wake

    def _start_relay(self) -> None:
        thread = threading.Thread(target=self._run_relay, name=f"poorio-iocp-relay-{self._port:#x}", daemon=True)
        thread.start()
        self._relay = thread

    def _run_relay(self) -> None:
        entries = ctypes.create_string_buffer(self._batch * win.ENTRY.size)
        removed = ctypes.c_ulong()
        arrived, size, signal = self._arrived, win.ENTRY.size, self._signal
        stop = False
        while not stop:
            # The GIL is let go while the thread sleeps here (ctypes does it).
            if not win.GetQueuedCompletionStatusEx(self._port, entries, self._batch, ctypes.byref(removed),
                                                  win.INFINITE, False):
                self._relay_error = win.error()  # the port is gone: nothing more will come
                stop = True
            else:
                for key, address, _internal, transferred in win.ENTRY.iter_unpack(entries.raw[: removed.value * size]):
                    if key == _STOP:
                        stop = True
                    else:
                        arrived.append((address, transferred))
            signal.set()
            self._wake()

    def fileno(self) -> int:
        """The port's HANDLE."""
        return self._port

    def forget(self, fd) -> None:
        """Call before closing a handle this port has used: the next handle may reuse its number."""
        self._kinds.pop(fileno(fd), None)

    # -- submitting ------------------------------------------------------------------

    def _associate(self, handle: int) -> int:
        kind = self._kinds.get(handle)
        if kind is None:
            if not win.CreateIoCompletionPort(handle, self._port, 0, 0):
                raise win.error()
            kind = self._kinds[handle] = win.GetFileType(handle)
        return kind

    def _begin(self, token, kind: str, fd, keep) -> _Op:
        self._admit(token)
        if self._arrived is not None and self._relay is None:
            self._start_relay()
        handle = None
        if fd is not None:
            handle = fileno(fd)
            self._associate(handle)
        return _Op(token, kind, handle, keep)

    def _started(self, op: _Op, ok: bool) -> None:
        """Record an operation the kernel took; one that failed at once completes here and now."""
        address = ctypes.addressof(op.overlapped)
        self._ops[address] = op
        self._tokens[op.token] = address
        if not ok:
            code = ctypes.get_last_error()
            if code != win.ERROR_IO_PENDING:  # no packet will come: complete it ourselves
                self._finish(address, code, 0)
                if self._wake is not None:  # and tell the owner, whose wait no packet will end
                    self._wake()

    def submit_recv(self, fd, buffer, token, flags: int = 0) -> None:
        keeper, addr, size = pin_writable(buffer)
        op = self._begin(token, "socket", fd, keeper)
        wsabuf = ctypes.create_string_buffer(win.WSABUF.pack(size, addr), win.WSABUF.size)
        op.extra = (wsabuf, ctypes.c_ulong(flags))
        ok = win.WSARecv(op.handle, wsabuf, 1, None, ctypes.byref(op.extra[1]), op.overlapped, None) == 0
        self._started(op, ok)

    def submit_send(self, fd, data, token, flags: int = 0) -> None:
        keeper, addr, size = pin_readable(data)
        op = self._begin(token, "socket", fd, keeper)
        op.extra = ctypes.create_string_buffer(win.WSABUF.pack(size, addr), win.WSABUF.size)
        ok = win.WSASend(op.handle, op.extra, 1, None, flags, op.overlapped, None) == 0
        self._started(op, ok)

    def submit_poll(self, fd, events: int, token) -> None:
        """Wait once for a socket to be READABLE (or WRITABLE); result: those flags.

        IOCP has no readiness operation; the classic stand-in (libuv's
        "zero read") is a zero-byte ``WSARecv``, which completes when data
        or the end of the stream arrives and consumes nothing.  WRITABLE is
        a zero-byte ``WSASend``, which completes as soon as the socket could
        take data.  Errors of the connection come back as its ``OSError``.
        """
        if not isinstance(events, int) or events & ~(READABLE | WRITABLE) or not events:
            raise ValueError(f"events must combine READABLE and WRITABLE, not {events!r}")
        op = self._begin(token, "poll", fd, events)
        wanted = WRITABLE if events & WRITABLE else READABLE
        op.extra = (ctypes.create_string_buffer(win.WSABUF.pack(0, 0), win.WSABUF.size), ctypes.c_ulong(0), wanted)
        if wanted == WRITABLE:
            ok = win.WSASend(op.handle, op.extra[0], 1, None, 0, op.overlapped, None) == 0
        else:
            ok = win.WSARecv(op.handle, op.extra[0], 1, None, ctypes.byref(op.extra[1]), op.overlapped, None) == 0
        self._started(op, ok)

    def _file_offset(self, op: _Op, offset: int, write: bool) -> None:
        if offset < 0:
            if self._kinds[op.handle] != win.FILE_TYPE_DISK:
                return  # a pipe: no offset
            if not write:
                raise ValueError("an overlapped read from a file needs an offset")
            offset = 0xFFFFFFFFFFFFFFFF  # both halves all ones: append
        struct.pack_into("<II", op.overlapped, win.OV_OFFSETS["Offset"], offset & 0xFFFFFFFF, offset >> 32)

    def submit_read(self, fd, buffer, offset: int, token) -> None:
        keeper, addr, size = pin_writable(buffer)
        op = self._begin(token, "read", fd, keeper)
        self._file_offset(op, offset, False)
        self._started(op, bool(win.ReadFile(op.handle, addr, size, None, op.overlapped)))

    def submit_write(self, fd, data, offset: int, token) -> None:
        keeper, addr, size = pin_readable(data)
        op = self._begin(token, "write", fd, keeper)
        self._file_offset(op, offset, True)
        self._started(op, bool(win.WriteFile(op.handle, addr, size, None, op.overlapped)))

    def submit_accept(self, fd, token) -> None:
        """Accept a connection; result: the new SOCKET, non-blocking and non-inheritable."""
        family = win.bound_family(fileno(fd))
        if family is None:
            raise win.error()
        fresh = socket.socket(family, socket.SOCK_STREAM)
        fresh.setblocking(False)
        accepted = fresh.detach()
        try:
            op = self._begin(token, "accept", fd, ctypes.create_string_buffer(2 * win.ADDRESS_ROOM))
        except BaseException:
            win.closesocket(accepted)
            raise
        op.extra = accepted
        received = ctypes.c_ulong()
        accept_ex = win.extension(win.WSAID_ACCEPTEX, win.ACCEPTEX)
        ok = accept_ex(op.handle, accepted, op.keep, 0, win.ADDRESS_ROOM, win.ADDRESS_ROOM, ctypes.byref(received),
                       op.overlapped)
        self._started(op, bool(ok))

    def submit_connect(self, fd, address: bytes, token) -> None:
        """Connect to ``address``, a ``sockaddr(family, addr)``; binds the socket first if it is not."""
        handle = fileno(fd)
        if win.bound_family(handle) is None:  # ConnectEx wants a bound socket: any address, any port
            family = struct.unpack_from("<H", address)[0]
            anywhere = sockaddr(family, ("::", 0) if family == getattr(socket, "AF_INET6", None) else ("0.0.0.0", 0))
            if win.bind(handle, anywhere, len(anywhere)) != 0:
                raise win.error()
        keeper = ctypes.create_string_buffer(bytes(address), len(address))
        op = self._begin(token, "connect", handle, keeper)
        connect_ex = win.extension(win.WSAID_CONNECTEX, win.CONNECTEX)
        self._started(op, bool(connect_ex(op.handle, keeper, len(address), None, 0, None, op.overlapped)))

    def submit_timeout(self, seconds: float, token) -> None:
        """Complete after ``seconds`` with 0: kept here, in a heap, since IOCP has no timer operation."""
        ns = nanoseconds(seconds)
        if ns is None:
            raise ValueError("a timeout needs a finite number of seconds")
        op = self._begin(token, "timer", None, None)
        address = ctypes.addressof(op.overlapped)  # never given to the kernel: just a unique key
        self._ops[address] = op
        self._tokens[token] = address
        heapq.heappush(self._timers, (time.monotonic() + ns / 1e9, address))

    def _expire(self) -> float | None:
        """Complete the timers that are due; seconds until the next one (None: none left)."""
        timers = self._timers
        now = time.monotonic()
        while timers:
            deadline, address = timers[0]
            if address not in self._ops:
                heapq.heappop(timers)  # cancelled
                continue
            if deadline > now:
                return deadline - now
            heapq.heappop(timers)
            self._finish(address, 0, 0)
        return None

    def cancel(self, token) -> bool:
        """Ask for an early end (CancelIoEx); the operation still completes, exactly once."""
        address = self._tokens.get(token)
        if address is None or self._closed:
            return False
        op = self._ops[address]
        if op.kind == "timer":
            self._finish(address, win.ERROR_OPERATION_ABORTED, 0)
            return True
        if not win.CancelIoEx(op.handle, op.overlapped):
            code = ctypes.get_last_error()
            if code != win.ERROR_NOT_FOUND:  # not found: it is completing already
                raise win.error(code)
        return True

    # -- completing --------------------------------------------------------------------

    def _finish(self, address: int, code: int, transferred: int) -> None:
        op = self._ops.pop(address)
        del self._tokens[op.token]
        result = transferred
        if code:
            if op.kind == "read" and code in (win.ERROR_BROKEN_PIPE, win.ERROR_HANDLE_EOF):
                result = 0  # the end of the pipe or file
            else:
                result = win.error(code)
        if op.kind == "accept":
            accepted = op.extra
            if code:
                win.closesocket(accepted)
            else:
                listener = ctypes.c_size_t(op.handle)
                win.setsockopt(accepted, win.SOL_SOCKET, win.SO_UPDATE_ACCEPT_CONTEXT, ctypes.byref(listener),
                            ctypes.sizeof(listener))
                result = accepted
        elif op.kind == "poll" and not code:
            result = op.extra[2]
        elif op.kind == "connect" and not code:
            win.setsockopt(op.handle, win.SOL_SOCKET, win.SO_UPDATE_CONNECT_CONTEXT, None, 0)
            result = 0
        self._done.append((op.token, result, 0))

    def _status(self, op: _Op) -> tuple:
        """(error code, bytes) of a finished operation, asked of the API that started it."""
        transferred = ctypes.c_ulong()
        if op.kind in ("socket", "accept", "connect", "poll"):
            flags = ctypes.c_ulong()
            ok = win.WSAGetOverlappedResult(op.handle, op.overlapped, ctypes.byref(transferred), False,
                                         ctypes.byref(flags))
        else:
            ok = win.GetOverlappedResult(op.handle, op.overlapped, ctypes.byref(transferred), False)
        return (0 if ok else ctypes.get_last_error()), transferred.value

    def _dequeue(self, ms: int) -> None:
        if not win.GetQueuedCompletionStatusEx(self._port, self._entries, self._batch, ctypes.byref(self._removed),
                                            ms, False):
            code = ctypes.get_last_error()
            if code == win.WAIT_TIMEOUT:
                return
            raise win.error(code)
        count = self._removed.value
        for _key, address, _internal, transferred in win.ENTRY.iter_unpack(self._entries.raw[: count * win.ENTRY.size]):
            self._packet(address, transferred)

    def _packet(self, address: int, transferred: int) -> None:
        """One packet taken off the port: finish its operation."""
        op = self._ops.get(address)
        if op is None:
            return
        status = struct.unpack_from("<I", op.overlapped, win.OV_OFFSETS["Internal"])[0]
        code = 0
        if status:  # an NTSTATUS: let the API that started it say which Win32 error
            code, transferred = self._status(op)
        self._finish(address, code, transferred)

    def _relayed(self) -> None:
        """Finish what the relay thread took."""
        arrived = self._arrived
        while arrived:
            self._packet(*arrived.popleft())
        if self._relay_error is not None and not self._closed:
            raise self._relay_error

    def completions(self) -> list:
        """The completions collected so far (relayed: those the relay thread took), without waiting."""
        if self._arrived is not None:
            self._relayed()
            if self._timers:
                self._expire()
        return self._take()

    def _collect(self, ns: int | None) -> None:
        if self._arrived is not None:
            self._collect_relayed(ns)
            return
        if ns == 0:
            self._dequeue(0)
            self._expire()
            return
        # In slices, so that a pending Ctrl-C raises between two of them.
        step = SLICE_MS if ns is None else min(SLICE_MS, math.ceil(ns / 1e6))
        timer = self._expire()
        if timer is not None:
            step = min(step, math.ceil(timer * 1000))
        if not self._done:
            self._dequeue(step)
            self._expire()

    def _collect_relayed(self, ns: int | None) -> None:
        signal = self._signal
        signal.clear()  # before looking: a batch relayed after this sets it again
        self._relayed()
        timer = self._expire()
        if ns == 0 or self._done:
            return
        step = SLICE_MS if ns is None else min(SLICE_MS, math.ceil(ns / 1e6))
        if timer is not None:
            step = min(step, math.ceil(timer * 1000))
        signal.wait(step / 1000.0)  # in slices: a pending Ctrl-C raises between two of them
        self._relayed()
        self._expire()

    def flush(self) -> None:
        """Nothing is queued on this side: every operation was started when submitted."""

    def _release(self) -> None:
        for address, op in list(self._ops.items()):
            if op.kind == "timer":
                self._ops.pop(address)
            else:
                win.CancelIoEx(op.handle, op.overlapped)
        deadline = time.monotonic() + 10.0  # what the kernel has not finished by then, it never will
        relay = self._relay
        if relay is not None:  # it takes what comes before the stop packet, then ends
            if win.PostQueuedCompletionStatus(self._port, 0, _STOP, None):
                relay.join(10.0)
            self._relay = None
            self._relayed()
        while self._ops and time.monotonic() < deadline:
            self._dequeue(SLICE_MS)
        _ORPHANED.extend(op for op in self._ops.values())  # never completed: keep their memory for good
        self._ops.clear()
        self._tokens.clear()
        self._done.clear()
        self._kinds.clear()
        win.CloseHandle(self._port)


_ORPHANED: list = []
_STOP = 0x706F6F72  # the completion key of the packet that ends a relay thread ("poor")
