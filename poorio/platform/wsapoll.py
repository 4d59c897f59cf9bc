"""WSAPoll through ctypes: Windows' poll(2), with no 512-socket select() ceiling.

WSAPoll (ws2_32, Vista and later) takes an array of ``WSAPOLLFD`` records,
the same dense array ``poll.ArrayPool`` keeps for poll(2) -- so this module
only describes the record, the flags and the call.  Its sharp edges, and
what poorio does about each:

* **The numbers differ from POSIX.**  ``POLLRDNORM`` is 0x100, ``POLLWRNORM``
  0x10, ``POLLERR`` 0x1, ``POLLHUP`` 0x2, ``POLLNVAL`` 0x4.  Only
  ``POLLRDNORM``, ``POLLRDBAND`` and ``POLLWRNORM`` may be asked for:
  anything else in ``events`` -- ``POLLPRI`` above all, which the Microsoft
  provider does not support -- fails the whole call with ``WSAEINVAL``.
  poorio asks for nothing but the first and the last.
* **``fd`` is a SOCKET**: a pointer-sized handle, 8 bytes on Win64, so the
  record is 16 bytes there (fd, events at 8, revents at 10, 4 bytes of
  tail padding) and 8 on Win32.  Only sockets can be polled: no pipes, no
  files, no console.
* **The array must hold at least one valid socket**, or WSAPoll fails with
  ``WSAEINVAL`` instead of sleeping.  An empty pool therefore sleeps in
  Python for the timeout; a pool whose every socket was closed behind its
  back fails with that WSAEINVAL, unmodified -- remove before you close.
* **Ctrl-C does not interrupt it.**  Python's SIGINT handler only sets a
  flag; the handler runs when the main thread next executes bytecode.  A
  wait longer than ``SLICE_MS`` is therefore made of WSAPoll calls of at
  most 100 ms each, so a KeyboardInterrupt lands within about a tenth of a
  second.  We chose this over a wake-up socket registered with
  ``signal.set_wakeup_fd``: that fd is process-wide and already claimed by
  asyncio and others, and a socket pair per pool costs two handles.  The
  price is up to ten wake-ups a second while a blocking wait is idle.
* **A failed non-blocking connect is not reported** on Windows before 10
  version 2004 (WSAPoll's documented fix): the socket never becomes
  writable nor shows ``POLLERR``, and a wait for it would hang.  The IO
  layer's connect waits in slices of ``facts.CONNECT_CHECK_INTERVAL``
  seconds and reads ``SO_ERROR`` after each slice: non-zero is the
  connect's error.
* **Errors are winsock's**: ``WSAGetLastError`` (which ctypes keeps for us
  with ``use_last_error``), raised as ``OSError`` with ``winerror`` set and
  ``errno`` derived from it by Python, as the stdlib's socket errors are.

No handle is created here, so there is nothing to make non-inheritable.
"""

from __future__ import annotations

import ctypes
import math
import struct
import sys
import time

from ._base import DEFAULT_CAPACITY, ERROR, HANGUP, READABLE, WRITABLE
from ._libc import POINTER_SIZE
from .poll import ArrayPool, _translation

__all__ = ["SocketIoPool", "wsapollfd_layout", "available", "SLICE_MS"]

# <winsock2.h>
POLLRDNORM = 0x0100
POLLRDBAND = 0x0200
POLLIN = POLLRDNORM | POLLRDBAND
POLLPRI = 0x0400  # rejected by WSAPoll (WSAEINVAL); never asked for
POLLWRNORM = 0x0010
POLLWRBAND = 0x0020
POLLOUT = POLLWRNORM
POLLERR = 0x0001
POLLHUP = 0x0002
POLLNVAL = 0x0004

SOL_SOCKET = 0xFFFF
SO_TYPE = 0x1008

# The longest single WSAPoll call: how late a Ctrl-C may land.
SLICE_MS = 100


def wsapollfd_layout(pointer_size: int) -> tuple:
    """``WSAPOLLFD`` for a Windows ABI: (struct format, ctypes type, offset of revents).

    ``typedef struct pollfd { SOCKET fd; SHORT events; SHORT revents; }``
    (winsock2.h), ``SOCKET`` being ``UINT_PTR``.  The format packs ``fd``
    *signed*: handles never reach the top bit, and -1 -- what ``ArrayPool``
    writes into a freed slot -- is then ``INVALID_SOCKET`` bit for bit.
    """
    if pointer_size == 8:
        fmt = "=qhh4x"  # Win64: 16 bytes, revents at 10
        fields = [("fd", ctypes.c_uint64), ("events", ctypes.c_short), ("revents", ctypes.c_short), ("_tail", ctypes.c_char * 4)]
    elif pointer_size == 4:
        fmt = "=ihh"  # Win32: 8 bytes, revents at 6
        fields = [("fd", ctypes.c_uint32), ("events", ctypes.c_short), ("revents", ctypes.c_short)]
    else:
        raise ValueError(f"no Windows ABI has {pointer_size}-byte pointers")
    # The explicit tail keeps the size right even where a uint64 is 4-aligned (i386 hosts).
    ctype = type(f"WSAPOLLFD{pointer_size * 8}", (ctypes.Structure,), {"_pack_": 1, "_layout_": "ms", "_fields_": fields})
    return fmt, ctype, pointer_size + 2


_FORMAT, WSAPOLLFD, _REVENTS_OFFSET = wsapollfd_layout(POINTER_SIZE)

_WSAPoll = _getsockopt = None
if sys.platform == "win32":  # pragma: no cover - Windows (and Wine) only
    # Importing the stdlib's _socket (a C module, not select) runs WSAStartup
    # once for the process; WSAPoll fails with WSANOTINITIALISED without it.
    import _socket  # noqa: F401

    _ws2_32 = ctypes.WinDLL("ws2_32", use_last_error=True)
    _WSAPoll = getattr(_ws2_32, "WSAPoll", None)  # absent before Vista
    if _WSAPoll is not None:
        _WSAPoll.restype = ctypes.c_int
        _WSAPoll.argtypes = (ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int)
        _getsockopt = _ws2_32.getsockopt
        _getsockopt.restype = ctypes.c_int
        _getsockopt.argtypes = (ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int))


def available() -> bool:
    """Whether WSAPoll can be called here (Windows Vista or later, or Wine)."""
    return _WSAPoll is not None


def _wsa_error() -> OSError:
    """The OSError for the calling thread's last winsock error, winerror and all."""
    code = ctypes.get_last_error()
    return OSError(None, ctypes.FormatError(code), None, code)


def _poll_once(array, n: int, ms: int) -> int:
    ready = _WSAPoll(array, n, ms)
    if ready < 0:
        raise _wsa_error()
    return ready


def _poll(array, n: int, ms: int) -> int:
    """WSAPoll for ``ms`` milliseconds (-1: forever), in Ctrl-C-sized slices."""
    if n and 0 <= ms <= SLICE_MS:
        return _poll_once(array, n, ms)
    deadline = None if ms < 0 else time.monotonic() + ms / 1000.0
    while True:
        step = SLICE_MS
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return 0
            step = min(SLICE_MS, math.ceil(left * 1000.0))
        if n:
            ready = _poll_once(array, n, step)
            if ready:
                return ready
        else:  # nothing to poll, and WSAPoll will not sleep on an empty array
            time.sleep(step / 1000.0)
        # Back in bytecode here: a pending Ctrl-C raises KeyboardInterrupt now.


class SocketIoPool(ArrayPool):
    """A fixed-capacity interest set of sockets on WSAPoll."""

    backend = "wsapoll"

    _record = struct.Struct(_FORMAT)
    _record_type = WSAPOLLFD
    _revents_offset = _REVENTS_OFFSET
    _to_native = {READABLE: POLLRDNORM, WRITABLE: POLLWRNORM, READABLE | WRITABLE: POLLRDNORM | POLLWRNORM}
    _from_native = _translation(
        1024,
        [
            (POLLRDNORM, READABLE),
            (POLLRDBAND, READABLE),
            (POLLWRNORM, WRITABLE),
            (POLLWRBAND, WRITABLE),
            (POLLERR, ERROR),
            (POLLHUP, HANGUP),
            (POLLNVAL, ERROR),
        ],
    )
    _call = staticmethod(_poll)

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if _WSAPoll is None:
            from ..errors import BackendUnavailableError

            raise BackendUnavailableError("WSAPoll is not available on this system")
        super().__init__(capacity)

    def _validate(self, fd: int) -> None:
        # WSAPoll would take any number and report POLLNVAL later; ask winsock
        # now, so a non-socket fails at add() (WSAENOTSOCK) as it would with
        # epoll_ctl or kevent.
        kind = ctypes.c_int(0)
        size = ctypes.c_int(ctypes.sizeof(kind))
        if _getsockopt(fd, SOL_SOCKET, SO_TYPE, ctypes.byref(kind), ctypes.byref(size)) != 0:
            raise _wsa_error()
