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
  with another port is refused with ``ERROR_INVALID_PARAMETER``.
* **Errors come twice.**  A call that fails at once (anything but
  ``ERROR_IO_PENDING``) queues no packet; the port then completes the
  operation itself, so every operation still completes exactly once, with
  the ``OSError`` (``winerror`` set) the call returned.  A failure that
  ends a pending operation is read back with ``WSAGetOverlappedResult``
  (sockets) or ``GetOverlappedResult`` (files, pipes).  The end of a pipe
  (``ERROR_BROKEN_PIPE``) or a file (``ERROR_HANDLE_EOF``) on a read is a
  result of 0, as on POSIX; a cancelled operation's error
  (``ERROR_OPERATION_ABORTED``, winerror 995) carries ``errno`` ECANCELED.
* **Only overlapped handles.**  ``os.pipe()`` and ``open()`` make
  synchronous handles, on which an "overlapped" read blocks; ``pipe()`` and
  ``open_file()`` here make handles that work with a port (a named pipe
  pair, as asyncio's ``windows_utils.pipe`` does, and ``CreateFileW``).
  File operations name their offset: -1 means "the pipe's stream" for a
  pipe; for a file it appends on a write and is refused on a read.
* **Accept and connect are extensions.**  ``AcceptEx`` and ``ConnectEx``
  come from ``WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)``; ``AcceptEx``
  needs a fresh socket to accept into and ``SO_UPDATE_ACCEPT_CONTEXT``
  after, ``ConnectEx`` a bound socket and ``SO_UPDATE_CONNECT_CONTEXT``.
* **Ctrl-C.**  A long wait is made of waits of at most ``SLICE_MS``, as in
  ``wsapoll.py``, so a KeyboardInterrupt lands within a tenth of a second.

No readiness pool here: WSAPoll's ``SocketIoPool`` stays Windows' readiness
backend.  A level-triggered pool on IOCP needs the undocumented AFD poll
ioctl (as trio and wepoll do); the proactor makes readiness unnecessary for
the operations that matter, pipes included, which WSAPoll cannot wait on.
"""

from __future__ import annotations

import ctypes
import errno
import heapq
import itertools
import math
import os
import socket
import struct
import sys
import time

from ..errors import AlreadyRegisteredError, BackendUnavailableError, ClosedResourceError, PoolFullError
from ._base import DEFAULT_CAPACITY, READABLE, WRITABLE, PoolStatistics
from ._libc import POINTER_SIZE, fileno
from ._proactor import nanoseconds, pin_readable, pin_writable
from ._sockaddr import sockaddr

__all__ = ["available", "Port", "pipe", "open_file", "close_handle", "sockaddr", "READABLE", "WRITABLE",
           "overlapped_layout", "overlapped_entry_layout", "wsabuf_layout"]

SLICE_MS = 100
ERROR_HANDLE_EOF = 38
ERROR_INVALID_PARAMETER = 87
ERROR_BROKEN_PIPE = 109
ERROR_NOT_FOUND = 1168
ERROR_IO_PENDING = 997
ERROR_OPERATION_ABORTED = 995
WAIT_TIMEOUT = 258
FILE_TYPE_DISK = 1
INFINITE = 0xFFFFFFFF
SO_UPDATE_ACCEPT_CONTEXT = 0x700B
SO_UPDATE_CONNECT_CONTEXT = 0x7010
SOL_SOCKET = 0xFFFF
SIO_GET_EXTENSION_FUNCTION_POINTER = 0xC8000006
WSAID_ACCEPTEX = struct.pack("<IHH8B", 0xB5367DF1, 0xCBAC, 0x11CF, 0x95, 0xCA, 0x00, 0x80, 0x5F, 0x48, 0xA1, 0x92)
WSAID_CONNECTEX = struct.pack("<IHH8B", 0x25A207B9, 0xDDF3, 0x4660, 0x8E, 0xE9, 0x76, 0xE5, 0x8C, 0x74, 0x06, 0x3E)
_ADDRESS_ROOM = 28 + 16  # sizeof(SOCKADDR_IN6) + 16, per address, as AcceptEx demands


def overlapped_layout(pointer_size: int) -> tuple:
    """``OVERLAPPED`` for a Windows ABI: (struct format, size, {field: offset}).

    ``ULONG_PTR Internal; ULONG_PTR InternalHigh; union { struct { DWORD
    Offset; DWORD OffsetHigh; }; PVOID Pointer; }; HANDLE hEvent;`` (minwinbase.h).
    """
    if pointer_size == 8:
        return "<QQIIQ", 32, dict(Internal=0, InternalHigh=8, Offset=16, OffsetHigh=20, hEvent=24)
    if pointer_size == 4:
        return "<IIIII", 20, dict(Internal=0, InternalHigh=4, Offset=8, OffsetHigh=12, hEvent=16)
    raise ValueError(f"no Windows ABI has {pointer_size}-byte pointers")


def overlapped_entry_layout(pointer_size: int) -> tuple:
    """``OVERLAPPED_ENTRY``: (format, size): ``ULONG_PTR lpCompletionKey; LPOVERLAPPED lpOverlapped;
    ULONG_PTR Internal; DWORD dwNumberOfBytesTransferred;`` -- with tail padding on Win64."""
    if pointer_size == 8:
        return "<QQQI4x", 32
    if pointer_size == 4:
        return "<IIII", 16
    raise ValueError(f"no Windows ABI has {pointer_size}-byte pointers")


def wsabuf_layout(pointer_size: int) -> tuple:
    """``WSABUF``: (format, size): ``ULONG len; CHAR *buf;`` -- the pointer 8-aligned on Win64."""
    if pointer_size == 8:
        return "<I4xQ", 16
    if pointer_size == 4:
        return "<II", 8
    raise ValueError(f"no Windows ABI has {pointer_size}-byte pointers")


_OV_FORMAT, _OV_SIZE, _OV_OFFSETS = overlapped_layout(POINTER_SIZE)
_ENTRY = struct.Struct(overlapped_entry_layout(POINTER_SIZE)[0])
_WSABUF = struct.Struct(wsabuf_layout(POINTER_SIZE)[0])

_k32 = _ws2 = None
if sys.platform == "win32":  # pragma: no cover - Windows (and Wine) only
    import _socket  # noqa: F401 -- runs WSAStartup once for the process
    from ctypes import wintypes as _w

    _k32 = ctypes.WinDLL("kernel32", use_last_error=True)
    _ws2 = ctypes.WinDLL("ws2_32", use_last_error=True)
    _H, _P, _D = ctypes.c_void_p, ctypes.c_void_p, _w.DWORD
    _S = ctypes.c_size_t  # SOCKET is UINT_PTR

    def _fn(lib, name, restype, *argtypes):
        func = getattr(lib, name)
        func.restype, func.argtypes = restype, argtypes
        return func

    _CreateIoCompletionPort = _fn(_k32, "CreateIoCompletionPort", _H, _H, _H, ctypes.c_size_t, _D)
    _GetQueuedCompletionStatusEx = _fn(_k32, "GetQueuedCompletionStatusEx", _w.BOOL, _H, _P, _w.ULONG, _P, _D, _w.BOOL)
    _CancelIoEx = _fn(_k32, "CancelIoEx", _w.BOOL, _H, _P)
    _ReadFile = _fn(_k32, "ReadFile", _w.BOOL, _H, _P, _D, _P, _P)
    _WriteFile = _fn(_k32, "WriteFile", _w.BOOL, _H, _P, _D, _P, _P)
    _GetOverlappedResult = _fn(_k32, "GetOverlappedResult", _w.BOOL, _H, _P, _P, _w.BOOL)
    _GetFileType = _fn(_k32, "GetFileType", _D, _H)
    _CloseHandle = _fn(_k32, "CloseHandle", _w.BOOL, _H)
    _CreateNamedPipeW = _fn(_k32, "CreateNamedPipeW", _H, _w.LPCWSTR, _D, _D, _D, _D, _D, _D, _P)
    _CreateFileW = _fn(_k32, "CreateFileW", _H, _w.LPCWSTR, _D, _D, _P, _D, _D, _H)
    _WSARecv = _fn(_ws2, "WSARecv", ctypes.c_int, _S, _P, _D, _P, _P, _P, _P)
    _WSASend = _fn(_ws2, "WSASend", ctypes.c_int, _S, _P, _D, _P, _D, _P, _P)
    _WSAIoctl = _fn(_ws2, "WSAIoctl", ctypes.c_int, _S, _D, _P, _D, _P, _D, _P, _P, _P)
    _WSAGetOverlappedResult = _fn(_ws2, "WSAGetOverlappedResult", _w.BOOL, _S, _P, _P, _w.BOOL, _P)
    _setsockopt = _fn(_ws2, "setsockopt", ctypes.c_int, _S, ctypes.c_int, ctypes.c_int, _P, ctypes.c_int)
    _closesocket = _fn(_ws2, "closesocket", ctypes.c_int, _S)
    _getsockname = _fn(_ws2, "getsockname", ctypes.c_int, _S, _P, _P)
    _bind = _fn(_ws2, "bind", ctypes.c_int, _S, _P, ctypes.c_int)
    _ACCEPTEX = ctypes.WINFUNCTYPE(_w.BOOL, _S, _S, _P, _D, _D, _D, _P, _P, use_last_error=True)
    _CONNECTEX = ctypes.WINFUNCTYPE(_w.BOOL, _S, _P, ctypes.c_int, _P, _D, _P, _P, use_last_error=True)

_INVALID_HANDLE = ctypes.c_void_p(-1).value
_extensions: dict = {}


def available() -> bool:
    """Whether completion ports can be used here (Windows, or Wine)."""
    return _k32 is not None


def _error(code: int | None = None) -> OSError:
    """The OSError for a Windows error code (default: the thread's last), winerror and all."""
    if code is None:
        code = ctypes.get_last_error()
    exc = OSError(None, ctypes.FormatError(code).strip(), None, code)
    if code == ERROR_OPERATION_ABORTED:
        exc.errno = errno.ECANCELED  # what a cancelled operation says on every backend
    return exc


def _extension(guid: bytes, prototype):
    """A winsock extension function (AcceptEx, ConnectEx), looked up once."""
    func = _extensions.get(guid)
    if func is None:
        with socket.socket() as probe:
            pointer = ctypes.c_void_p()
            got = ctypes.c_ulong()
            if _WSAIoctl(probe.fileno(), SIO_GET_EXTENSION_FUNCTION_POINTER, guid, len(guid),
                         ctypes.byref(pointer), ctypes.sizeof(pointer), ctypes.byref(got), None, None) != 0:
                raise _error()
        func = _extensions[guid] = prototype(pointer.value)
    return func


def close_handle(handle: int) -> None:
    """Close a handle made by ``pipe`` or ``open_file``."""
    if not _CloseHandle(handle):
        raise _error()


_pipe_ids = itertools.count()


def pipe() -> tuple:
    """(read handle, write handle) of a one-way, overlapped, non-inheritable pipe."""
    name = f"\\\\.\\pipe\\poorio-{os.getpid()}-{next(_pipe_ids)}-{os.urandom(4).hex()}"
    # PIPE_ACCESS_INBOUND | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE; byte mode, remote clients refused.
    reader = _CreateNamedPipeW(name, 0x1 | 0x40000000 | 0x80000, 0x8, 1, 65536, 65536, 0, None)
    if reader in (None, _INVALID_HANDLE):
        raise _error()
    # GENERIC_WRITE, OPEN_EXISTING, FILE_FLAG_OVERLAPPED
    writer = _CreateFileW(name, 0x40000000, 0, None, 3, 0x40000000, None)
    if writer in (None, _INVALID_HANDLE):
        exc = _error()
        _CloseHandle(reader)
        raise exc
    return reader, writer


def open_file(path: str, write: bool = False) -> int:
    """An overlapped, non-inheritable handle on ``path`` (created if ``write``)."""
    access = 0x80000000 | (0x40000000 if write else 0)  # GENERIC_READ | GENERIC_WRITE
    # FILE_SHARE_READ|WRITE|DELETE; OPEN_ALWAYS or OPEN_EXISTING; FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OVERLAPPED
    handle = _CreateFileW(os.fspath(path), access, 0x7, None, 4 if write else 3, 0x80 | 0x40000000, None)
    if handle in (None, _INVALID_HANDLE):
        raise _error()
    return handle


class _Op:
    """One operation in flight: its token, its OVERLAPPED and whatever must outlive it."""

    __slots__ = ("token", "kind", "handle", "overlapped", "keep", "extra")

    def __init__(self, token, kind: str, handle: int, keep) -> None:
        self.token, self.kind, self.handle, self.keep = token, kind, handle, keep
        self.overlapped = ctypes.create_string_buffer(_OV_SIZE)
        self.extra = None


def _bound_family(handle: int) -> int | None:
    """The address family a socket is bound in, or None if it is not bound (getsockname's WSAEINVAL)."""
    room = ctypes.create_string_buffer(128)
    size = ctypes.c_int(len(room))
    if _getsockname(handle, room, ctypes.byref(size)) != 0:
        return None
    return struct.unpack_from("<H", room)[0]


class Port:
    """A proactor on one I/O completion port: submit overlapped operations with a token, wait for them.

    The same interface and contract as ``uring.Ring`` (see uring.py's essay);
    ``fd`` arguments are SOCKETs or overlapped HANDLEs.  Any thread may wait.
    """

    backend = "iocp"

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if _k32 is None:
            raise BackendUnavailableError("I/O completion ports are Windows'")
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, not {capacity!r}")
        self.capacity = capacity
        port = _CreateIoCompletionPort(_INVALID_HANDLE, None, 0, 1)
        if not port:
            raise _error()
        self._port = port
        self._batch = min(capacity, 256)
        self._entries = ctypes.create_string_buffer(self._batch * _ENTRY.size)
        self._removed = ctypes.c_ulong()
        self._ops: dict = {}  # address of an OVERLAPPED -> _Op
        self._tokens: dict = {}  # token -> address of its OVERLAPPED
        self._kinds: dict = {}  # associated handle -> GetFileType
        self._done: list = []
        self._timers: list = []  # heap of (deadline, key) of timeout operations
        self._closed = False

    def fileno(self) -> int:
        """The port's HANDLE."""
        return self._port

    def __len__(self) -> int:
        return len(self._ops)

    @property
    def closed(self) -> bool:
        return self._closed

    def statistics(self) -> PoolStatistics:
        return PoolStatistics(self.backend, self.capacity, len(self._ops))

    def forget(self, fd) -> None:
        """Call before closing a handle this port has used: the next handle may reuse its number."""
        self._kinds.pop(fileno(fd), None)

    # -- submitting ------------------------------------------------------------------

    def _associate(self, handle: int) -> int:
        kind = self._kinds.get(handle)
        if kind is None:
            if not _CreateIoCompletionPort(handle, self._port, 0, 0):
                raise _error()
            kind = self._kinds[handle] = _GetFileType(handle)
        return kind

    def _begin(self, token, kind: str, fd, keep) -> _Op:
        if self._closed:
            raise ClosedResourceError("the port is closed")
        if token in self._tokens:
            raise AlreadyRegisteredError(f"token {token!r} already has an operation in flight")
        if len(self._ops) >= self.capacity:
            raise PoolFullError(f"the port is full: {self.capacity} operations are in flight")
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
            if code != ERROR_IO_PENDING:  # no packet will come: complete it ourselves
                self._finish(address, code, 0)

    def submit_recv(self, fd, buffer, token, flags: int = 0) -> None:
        keeper, addr, size = pin_writable(buffer)
        op = self._begin(token, "socket", fd, keeper)
        wsabuf = ctypes.create_string_buffer(_WSABUF.pack(size, addr), _WSABUF.size)
        op.extra = (wsabuf, ctypes.c_ulong(flags))
        ok = _WSARecv(op.handle, wsabuf, 1, None, ctypes.byref(op.extra[1]), op.overlapped, None) == 0
        self._started(op, ok)

    def submit_send(self, fd, data, token, flags: int = 0) -> None:
        keeper, addr, size = pin_readable(data)
        op = self._begin(token, "socket", fd, keeper)
        op.extra = ctypes.create_string_buffer(_WSABUF.pack(size, addr), _WSABUF.size)
        ok = _WSASend(op.handle, op.extra, 1, None, flags, op.overlapped, None) == 0
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
        op.extra = (ctypes.create_string_buffer(_WSABUF.pack(0, 0), _WSABUF.size), ctypes.c_ulong(0), wanted)
        if wanted == WRITABLE:
            ok = _WSASend(op.handle, op.extra[0], 1, None, 0, op.overlapped, None) == 0
        else:
            ok = _WSARecv(op.handle, op.extra[0], 1, None, ctypes.byref(op.extra[1]), op.overlapped, None) == 0
        self._started(op, ok)

    def _file_offset(self, op: _Op, offset: int, write: bool) -> None:
        if offset < 0:
            if self._kinds[op.handle] != FILE_TYPE_DISK:
                return  # a pipe: no offset
            if not write:
                raise ValueError("an overlapped read from a file needs an offset")
            offset = 0xFFFFFFFFFFFFFFFF  # both halves all ones: append
        struct.pack_into("<II", op.overlapped, _OV_OFFSETS["Offset"], offset & 0xFFFFFFFF, offset >> 32)

    def submit_read(self, fd, buffer, offset: int, token) -> None:
        keeper, addr, size = pin_writable(buffer)
        op = self._begin(token, "read", fd, keeper)
        self._file_offset(op, offset, False)
        self._started(op, bool(_ReadFile(op.handle, addr, size, None, op.overlapped)))

    def submit_write(self, fd, data, offset: int, token) -> None:
        keeper, addr, size = pin_readable(data)
        op = self._begin(token, "write", fd, keeper)
        self._file_offset(op, offset, True)
        self._started(op, bool(_WriteFile(op.handle, addr, size, None, op.overlapped)))

    def submit_accept(self, fd, token) -> None:
        """Accept a connection; result: the new SOCKET, non-blocking and non-inheritable."""
        family = _bound_family(fileno(fd))
        if family is None:
            raise _error()
        fresh = socket.socket(family, socket.SOCK_STREAM)
        fresh.setblocking(False)
        accepted = fresh.detach()
        try:
            op = self._begin(token, "accept", fd, ctypes.create_string_buffer(2 * _ADDRESS_ROOM))
        except BaseException:
            _closesocket(accepted)
            raise
        op.extra = accepted
        received = ctypes.c_ulong()
        accept_ex = _extension(WSAID_ACCEPTEX, _ACCEPTEX)
        ok = accept_ex(op.handle, accepted, op.keep, 0, _ADDRESS_ROOM, _ADDRESS_ROOM, ctypes.byref(received),
                       op.overlapped)
        self._started(op, bool(ok))

    def submit_connect(self, fd, address: bytes, token) -> None:
        """Connect to ``address``, a ``sockaddr(family, addr)``; binds the socket first if it is not."""
        handle = fileno(fd)
        if _bound_family(handle) is None:  # ConnectEx wants a bound socket: any address, any port
            family = struct.unpack_from("<H", address)[0]
            anywhere = sockaddr(family, ("::", 0) if family == getattr(socket, "AF_INET6", None) else ("0.0.0.0", 0))
            if _bind(handle, anywhere, len(anywhere)) != 0:
                raise _error()
        keeper = ctypes.create_string_buffer(bytes(address), len(address))
        op = self._begin(token, "connect", handle, keeper)
        connect_ex = _extension(WSAID_CONNECTEX, _CONNECTEX)
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
            self._finish(address, ERROR_OPERATION_ABORTED, 0)
            return True
        if not _CancelIoEx(op.handle, op.overlapped):
            code = ctypes.get_last_error()
            if code != ERROR_NOT_FOUND:  # not found: it is completing already
                raise _error(code)
        return True

    # -- completing --------------------------------------------------------------------

    def _finish(self, address: int, code: int, transferred: int) -> None:
        op = self._ops.pop(address)
        del self._tokens[op.token]
        result = transferred
        if code:
            if op.kind == "read" and code in (ERROR_BROKEN_PIPE, ERROR_HANDLE_EOF):
                result = 0  # the end of the pipe or file
            else:
                result = _error(code)
        if op.kind == "accept":
            accepted = op.extra
            if code:
                _closesocket(accepted)
            else:
                listener = ctypes.c_size_t(op.handle)
                _setsockopt(accepted, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, ctypes.byref(listener),
                            ctypes.sizeof(listener))
                result = accepted
        elif op.kind == "poll" and not code:
            result = op.extra[2]
        elif op.kind == "connect" and not code:
            _setsockopt(op.handle, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, None, 0)
            result = 0
        self._done.append((op.token, result, 0))

    def _status(self, op: _Op) -> tuple:
        """(error code, bytes) of a finished operation, asked of the API that started it."""
        transferred = ctypes.c_ulong()
        if op.kind in ("socket", "accept", "connect", "poll"):
            flags = ctypes.c_ulong()
            ok = _WSAGetOverlappedResult(op.handle, op.overlapped, ctypes.byref(transferred), False,
                                         ctypes.byref(flags))
        else:
            ok = _GetOverlappedResult(op.handle, op.overlapped, ctypes.byref(transferred), False)
        return (0 if ok else ctypes.get_last_error()), transferred.value

    def _dequeue(self, ms: int) -> None:
        if not _GetQueuedCompletionStatusEx(self._port, self._entries, self._batch, ctypes.byref(self._removed),
                                            ms, False):
            code = ctypes.get_last_error()
            if code == WAIT_TIMEOUT:
                return
            raise _error(code)
        count = self._removed.value
        for _key, address, _internal, transferred in _ENTRY.iter_unpack(self._entries.raw[: count * _ENTRY.size]):
            op = self._ops.get(address)
            if op is None:
                continue
            status = struct.unpack_from("<I", op.overlapped, _OV_OFFSETS["Internal"])[0]
            code = 0
            if status:  # an NTSTATUS: let the API that started it say which Win32 error
                code, transferred = self._status(op)
            self._finish(address, code, transferred)

    def wait(self, timeout: float | None = None) -> list:
        """Wait up to ``timeout`` seconds; ``[(token, result, flags), ...]`` (see ``uring.Ring.wait``).

        Raises:
            ClosedResourceError: the port is closed.
            OSError: GetQueuedCompletionStatusEx failed.
        """
        if self._closed:
            raise ClosedResourceError("the port is closed")
        ns = nanoseconds(timeout)
        if ns == 0 or self._done:
            self._dequeue(0)
            self._expire()
            return self._take()
        deadline = None if ns is None else time.monotonic() + ns / 1e9
        while True:
            step = SLICE_MS
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                step = min(SLICE_MS, math.ceil(left * 1000))
            timer = self._expire()
            if timer is not None:
                step = min(step, math.ceil(timer * 1000))
            if not self._done:
                self._dequeue(step)
                self._expire()
            if self._done:
                return self._take()
            # Back in bytecode between slices: a pending Ctrl-C raises here.

    def flush(self) -> None:
        """Nothing is queued on this side: every operation was started when submitted."""

    def completions(self) -> list:
        return self._take()

    def _take(self) -> list:
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        """Cancel everything in flight, wait (up to 10 s) until the kernel is done with every buffer, close."""
        if self._closed:
            return
        self._closed = True
        for address, op in list(self._ops.items()):
            if op.kind == "timer":
                self._ops.pop(address)
            else:
                _CancelIoEx(op.handle, op.overlapped)
        deadline = time.monotonic() + 10.0
        while self._ops and time.monotonic() < deadline:
            self._dequeue(SLICE_MS)
        _ORPHANED.extend(op for op in self._ops.values())  # never completed: keep their memory for good
        self._ops.clear()
        self._tokens.clear()
        self._done.clear()
        self._kinds.clear()
        _CloseHandle(self._port)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._ops)}/{self.capacity} in flight"
        return f"<Port iocp {state}>"


_ORPHANED: list = []
