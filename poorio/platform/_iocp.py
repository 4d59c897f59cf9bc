"""The raw Windows side of the IOCP proactor: layouts, kernel32/ws2_32 bindings, overlapped handles.

``iocp.py`` builds ``Port`` on these and opens with the essay; here are the
facts it needs: the ``OVERLAPPED``/``OVERLAPPED_ENTRY``/``WSABUF`` layouts
of both Windows ABIs (pure functions, tested on any host), the functions
bound through ctypes with ``use_last_error``, the winsock extension lookup
(``AcceptEx``, ``ConnectEx``), and the handles a port can use: an overlapped
named pipe pair and an overlapped file.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
import socket
import struct
import sys

from ._libc import POINTER_SIZE
from ._sockaddr import sockaddr

__all__ = ["available", "pipe", "open_file", "close_handle", "overlapped_layout", "overlapped_entry_layout",
           "wsabuf_layout", "sockaddr"]


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
ADDRESS_ROOM = 28 + 16  # sizeof(SOCKADDR_IN6) + 16, per address, as AcceptEx demands


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


OV_FORMAT, OV_SIZE, OV_OFFSETS = overlapped_layout(POINTER_SIZE)
ENTRY = struct.Struct(overlapped_entry_layout(POINTER_SIZE)[0])
WSABUF = struct.Struct(wsabuf_layout(POINTER_SIZE)[0])

kernel32 = ws2_32 = None
CreateIoCompletionPort = GetQueuedCompletionStatusEx = PostQueuedCompletionStatus = ReOpenFile = CancelIoEx = ReadFile = WriteFile = GetOverlappedResult = GetFileType = CloseHandle = CreateNamedPipeW = CreateFileW = WSARecv = WSASend = WSAIoctl = WSAGetOverlappedResult = setsockopt = closesocket = getsockname = bind = ACCEPTEX = CONNECTEX = None
if sys.platform == "win32":  # pragma: no cover - Windows (and Wine) only
    import _socket  # noqa: F401 -- runs WSAStartup once for the process
    from ctypes import wintypes as _w

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    ws2_32 = ctypes.WinDLL("ws2_32", use_last_error=True)
    _H, _P, _D = ctypes.c_void_p, ctypes.c_void_p, _w.DWORD
    _S = ctypes.c_size_t  # SOCKET is UINT_PTR

    def _fn(lib, name, restype, *argtypes):
        func = getattr(lib, name)
        func.restype, func.argtypes = restype, argtypes
        return func

    CreateIoCompletionPort = _fn(kernel32, "CreateIoCompletionPort", _H, _H, _H, ctypes.c_size_t, _D)
    GetQueuedCompletionStatusEx = _fn(kernel32, "GetQueuedCompletionStatusEx", _w.BOOL, _H, _P, _w.ULONG, _P, _D, _w.BOOL)
    PostQueuedCompletionStatus = _fn(kernel32, "PostQueuedCompletionStatus", _w.BOOL, _H, _D, ctypes.c_size_t, _P)
    CancelIoEx = _fn(kernel32, "CancelIoEx", _w.BOOL, _H, _P)
    ReadFile = _fn(kernel32, "ReadFile", _w.BOOL, _H, _P, _D, _P, _P)
    WriteFile = _fn(kernel32, "WriteFile", _w.BOOL, _H, _P, _D, _P, _P)
    GetOverlappedResult = _fn(kernel32, "GetOverlappedResult", _w.BOOL, _H, _P, _P, _w.BOOL)
    GetFileType = _fn(kernel32, "GetFileType", _D, _H)
    CloseHandle = _fn(kernel32, "CloseHandle", _w.BOOL, _H)
    ReOpenFile = _fn(kernel32, "ReOpenFile", _H, _H, _D, _D, _D)
    CreateNamedPipeW = _fn(kernel32, "CreateNamedPipeW", _H, _w.LPCWSTR, _D, _D, _D, _D, _D, _D, _P)
    CreateFileW = _fn(kernel32, "CreateFileW", _H, _w.LPCWSTR, _D, _D, _P, _D, _D, _H)
    WSARecv = _fn(ws2_32, "WSARecv", ctypes.c_int, _S, _P, _D, _P, _P, _P, _P)
    WSASend = _fn(ws2_32, "WSASend", ctypes.c_int, _S, _P, _D, _P, _D, _P, _P)
    WSAIoctl = _fn(ws2_32, "WSAIoctl", ctypes.c_int, _S, _D, _P, _D, _P, _D, _P, _P, _P)
    WSAGetOverlappedResult = _fn(ws2_32, "WSAGetOverlappedResult", _w.BOOL, _S, _P, _P, _w.BOOL, _P)
    setsockopt = _fn(ws2_32, "setsockopt", ctypes.c_int, _S, ctypes.c_int, ctypes.c_int, _P, ctypes.c_int)
    closesocket = _fn(ws2_32, "closesocket", ctypes.c_int, _S)
    getsockname = _fn(ws2_32, "getsockname", ctypes.c_int, _S, _P, _P)
    bind = _fn(ws2_32, "bind", ctypes.c_int, _S, _P, ctypes.c_int)
    ACCEPTEX = ctypes.WINFUNCTYPE(_w.BOOL, _S, _S, _P, _D, _D, _D, _P, _P, use_last_error=True)
    CONNECTEX = ctypes.WINFUNCTYPE(_w.BOOL, _S, _P, ctypes.c_int, _P, _D, _P, _P, use_last_error=True)

INVALID_HANDLE = ctypes.c_void_p(-1).value
_extensions: dict = {}


def available() -> bool:
    """Whether completion ports can be used here (Windows, or Wine)."""
    return kernel32 is not None


def error(code: int | None = None) -> OSError:
    """The OSError for a Windows error code (default: the thread's last), winerror and all."""
    if code is None:
        code = ctypes.get_last_error()
    exc = OSError(None, ctypes.FormatError(code).strip(), None, code)
    if code == ERROR_OPERATION_ABORTED:
        exc.errno = errno.ECANCELED  # what a cancelled operation says on every backend
    return exc


def extension(guid: bytes, prototype):
    """A winsock extension function (AcceptEx, ConnectEx), looked up once."""
    func = _extensions.get(guid)
    if func is None:
        with socket.socket() as probe:
            pointer = ctypes.c_void_p()
            got = ctypes.c_ulong()
            if WSAIoctl(probe.fileno(), SIO_GET_EXTENSION_FUNCTION_POINTER, guid, len(guid),
                         ctypes.byref(pointer), ctypes.sizeof(pointer), ctypes.byref(got), None, None) != 0:
                raise error()
        func = _extensions[guid] = prototype(pointer.value)
    return func


def close_handle(handle: int) -> None:
    """Close a handle made by ``pipe`` or ``open_file``."""
    if not CloseHandle(handle):
        raise error()


_pipe_ids = itertools.count()


def pipe(overlapped: tuple = (True, True)) -> tuple:
    """(read handle, write handle) of a one-way, non-inheritable pipe; each end overlapped or not.

    A child process's end is made synchronous (``overlapped=(False, True)``
    for its stdin, ``(True, False)`` for its stdout), as asyncio's
    ``windows_utils.pipe`` does: programs read and write their standard
    handles without an OVERLAPPED, which an overlapped handle does not allow.
    """
    name = f"\\\\.\\pipe\\poorio-{os.getpid()}-{next(_pipe_ids)}-{os.urandom(4).hex()}"
    read_flag = 0x40000000 if overlapped[0] else 0  # FILE_FLAG_OVERLAPPED
    write_flag = 0x40000000 if overlapped[1] else 0
    # PIPE_ACCESS_INBOUND | FILE_FLAG_FIRST_PIPE_INSTANCE; byte mode, remote clients refused.
    reader = CreateNamedPipeW(name, 0x1 | read_flag | 0x80000, 0x8, 1, 65536, 65536, 0, None)
    if reader in (None, INVALID_HANDLE):
        raise error()
    # GENERIC_WRITE, OPEN_EXISTING
    writer = CreateFileW(name, 0x40000000, 0, None, 3, write_flag, None)
    if writer in (None, INVALID_HANDLE):
        exc = error()
        CloseHandle(reader)
        raise exc
    return reader, writer


def open_file(path: str, write: bool = False) -> int:
    """An overlapped, non-inheritable handle on ``path`` (created if ``write``)."""
    access = 0x80000000 | (0x40000000 if write else 0)  # GENERIC_READ | GENERIC_WRITE
    # FILE_SHARE_READ|WRITE|DELETE; OPEN_ALWAYS or OPEN_EXISTING; FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OVERLAPPED
    handle = CreateFileW(os.fspath(path), access, 0x7, None, 4 if write else 3, 0x80 | 0x40000000, None)
    if handle in (None, INVALID_HANDLE):
        raise error()
    return handle


def reopen_overlapped(fd: int, write: bool) -> int:
    """An overlapped, non-inheritable twin of C runtime fd ``fd``'s file handle (``ReOpenFile``), to read or write.

    ``open()`` makes synchronous handles, which a port cannot drive; the
    twin reaches the same file.  Close it with ``close_handle``.  A pipe or
    console cannot be reopened: the error is Windows' own.
    """
    import msvcrt

    handle = msvcrt.get_osfhandle(fd)  # OSError(EBADF) for a closed fd
    # GENERIC_WRITE or GENERIC_READ; FILE_SHARE_READ|WRITE|DELETE; FILE_FLAG_OVERLAPPED
    twin = ReOpenFile(handle, 0x40000000 if write else 0x80000000, 0x7, 0x40000000)
    if twin in (None, INVALID_HANDLE):
        raise error()
    return twin


def bound_family(handle: int) -> int | None:
    """The address family a socket is bound in, or None if it is not bound (getsockname's WSAEINVAL)."""
    room = ctypes.create_string_buffer(128)
    size = ctypes.c_int(len(room))
    if getsockname(handle, room, ctypes.byref(size)) != 0:
        return None
    return struct.unpack_from("<H", room)[0]
