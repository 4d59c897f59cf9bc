"""kqueue(2) through ctypes: the readiness multiplexer of macOS and the BSDs.

Facts about kqueue that shaped this module:

* **Read and write are separate registrations.**  A kqueue holds *knotes*
  keyed by (ident, filter); an fd watched for both directions is two
  knotes, ``EVFILT_READ`` and ``EVFILT_WRITE``, added and deleted one by
  one.  A single wait may report the same fd twice, once per filter; we
  merge the two records into one ``(fd, flags)`` pair.
* **Changes and errors travel in the same call.**  ``kevent()`` applies a
  change list and then fills an event list.  A change that fails comes back
  *in the event list* as a record with ``EV_ERROR`` set and the errno in
  ``data`` -- unless the list has no room, in which case the whole call
  fails with the errno of the first bad change, and whether the changes
  after it were applied depends on the system.  We therefore set
  ``EV_RECEIPT`` on every change and always give one receipt slot per
  change: each change then reports its own outcome (``data == 0`` for
  success), and no pending event is drained by a registration call.
* **Closing an fd drops its knotes**, silently.  Deleting them afterwards
  fails: with ``EBADF`` when the fd number is free (FreeBSD reports this
  case as EBADF; trio saw macOS answer ENOENT), or with ``ENOENT`` when the
  number was reused by a file this kqueue never saw.  ``remove`` tolerates
  both, as it does for epoll.
* **A kqueue is not inherited by fork()**, unlike an epoll instance: the
  child gets no copy and must open its own.  It is still closed on exec
  here (``kqueue1(O_CLOEXEC)`` where the system has it, else ``FD_CLOEXEC``
  right after ``kqueue()``).
* **``EV_EOF`` is not POLLHUP.**  On the read filter it means the peer will
  send no more (a half-close is enough): we report ``HANGUP``, plus
  ``ERROR`` when ``fflags`` carries a pending socket error.  On the write
  filter it means nothing more can be sent -- a write would fail with
  ``EPIPE`` -- so we report ``HANGUP | ERROR``, as epoll reports a pipe
  whose reader is gone or a reset socket.  Either is a prompt to try the
  syscall, never proof that both directions are gone.
* **The struct differs per system, and so do the numbers.**  See
  ``kevent_layout``; NetBSD even numbers its filters from 0 upward where
  the others count down from -1.  The timeout is a ``struct timespec``
  (NULL blocks), not milliseconds.
* **Signals.**  ``EVFILT_SIGNAL`` records every attempt to deliver a
  signal, even one set to ``SIG_IGN`` (except ``SIGCHLD``), and does not
  replace handlers: the event layer may use it where kqueue is the backend.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys

from ._base import DEFAULT_CAPACITY, ERROR, HANGUP, READABLE, WRITABLE, SocketIoPool as Contract, fd_is_gone
from ._libc import POINTER_SIZE, libc, os_error

__all__ = ["SocketIoPool", "KeventLayout", "kevent_layout", "available", "LAYOUT", "SYSTEM", "filters"]

# Action flags: the same bits on macOS, FreeBSD, OpenBSD and NetBSD
# (<sys/event.h> of each; 16-bit there, 32-bit on NetBSD).
EV_ADD = 0x0001
EV_DELETE = 0x0002
EV_RECEIPT = 0x0040
EV_ERROR = 0x4000
EV_EOF = 0x8000

# (EVFILT_READ, EVFILT_WRITE, EVFILT_SIGNAL, EVFILT_TIMER) per system.
_FILTERS = {
    "darwin": (-1, -2, -6, -7),
    "freebsd": (-1, -2, -6, -7),
    "openbsd": (-1, -2, -6, -7),
    "netbsd": (0, 1, 5, 6),
    "netbsd10": (0, 1, 5, 6),
}


def filters(system: str) -> dict:
    """The filter numbers of ``system`` (a key of ``kevent_layout``)."""
    read, write, signal, timer = _FILTERS[system]
    return {"EVFILT_READ": read, "EVFILT_WRITE": write, "EVFILT_SIGNAL": signal, "EVFILT_TIMER": timer}


class KeventLayout:
    """One system's ``struct kevent`` and ``struct timespec``, and how to call kevent().

    ``format`` is a ``struct`` format (native byte order, every pad explicit)
    whose fields are ident, filter, flags, fflags, data, udata and, where the
    system has them, the four ``ext`` words; ``decode`` reads only the first
    five; ``offsets`` maps field names to byte offsets; ``ctype`` is the
    matching ctypes Structure; ``symbol`` is the libc entry point that takes
    this layout, ``count`` the C type of its two counts; ``timespec`` the
    struct format of the timeout.
    """

    __slots__ = ("system", "pointer_size", "format", "decode", "size", "offsets", "ctype", "symbol", "count", "timespec")

    def __init__(self, system, pointer_size, fmt, decode, offsets, ctype, symbol, count, timespec) -> None:
        self.system = system
        self.pointer_size = pointer_size
        self.format = fmt
        self.decode = decode  # ident, filter, flags, fflags, data; the rest skipped
        self.size = struct.calcsize(fmt)
        self.offsets = offsets
        self.ctype = ctype
        self.symbol = symbol
        self.count = count
        self.timespec = timespec  # struct format of (tv_sec, tv_nsec)

    def __repr__(self) -> str:
        return f"<KeventLayout {self.system} {self.pointer_size * 8}-bit: {self.size} bytes>"


def _build(name: str, fields: list, int64_align: int) -> tuple:
    """Lay ``fields`` (name, struct code, count) out C-style.

    Returns the struct format, the offsets, a ctypes type, and the format of
    the leading fields up to ``data`` padded to the full size (what a ready
    record is decoded with).
    """
    sizes = {"h": 2, "H": 2, "i": 4, "I": 4, "q": 8, "Q": 8}
    ctypes_of = {
        "h": ctypes.c_int16,
        "H": ctypes.c_uint16,
        "i": ctypes.c_int32,
        "I": ctypes.c_uint32,
        "q": ctypes.c_int64,
        "Q": ctypes.c_uint64,
    }
    fmt, offsets, cfields, offset, widest, decode = "=", {}, [], 0, 1, None
    for field, code, count in fields:
        size = sizes[code]
        align = int64_align if size == 8 else size
        widest = max(widest, align)
        pad = -offset % align
        if pad:
            fmt += f"{pad}x"
            cfields.append((f"_pad{offset}", ctypes.c_char * pad))
            offset += pad
        offsets[field] = offset
        fmt += code * count
        cfields.append((field, ctypes_of[code] * count if count > 1 else ctypes_of[code]))
        offset += size * count
        if field == "data":
            decode = (fmt, offset)
    tail = -offset % widest
    if tail:
        fmt += f"{tail}x"
        cfields.append(("_tail", ctypes.c_char * tail))
        offset += tail
    if decode is not None:
        decode = decode[0] + (f"{offset - decode[1]}x" if offset > decode[1] else "")
    # Every pad is an explicit field, so the type has the target's layout
    # whatever this interpreter's own alignment rules are (an i386 host
    # describing an LP64 struct, say).
    ctype = type(name, (ctypes.Structure,), {"_pack_": 1, "_layout_": "ms", "_fields_": cfields})
    return fmt, offsets, ctype, decode


def kevent_layout(system: str, pointer_size: int, int64_align: int) -> KeventLayout:
    """``struct kevent`` for ``system`` on an ABI with the given pointer size.

    ``int64_align`` is where that ABI aligns a 64-bit integer inside a struct:
    8 on every LP64 ABI and on 32-bit ARM, MIPS and PowerPC; 4 on i386.

    ``system`` is ``darwin`` (also DragonFly), ``freebsd`` (12 and later),
    ``openbsd``, ``netbsd`` (11 and later, ``__kevent100``) or ``netbsd10``
    (5.0 to 10.x, ``__kevent50``).
    """
    ptr = "Q" if pointer_size == 8 else "I"
    sptr = ptr.lower()
    head = [("ident", ptr, 1)]
    if system == "darwin":
        # macOS <sys/event.h>: uintptr_t ident; int16_t filter; uint16_t flags;
        # uint32_t fflags; intptr_t data; void *udata.
        fields = head + [("filter", "h", 1), ("flags", "H", 1), ("fflags", "I", 1), ("data", sptr, 1), ("udata", ptr, 1)]
    elif system in ("freebsd", "openbsd"):
        # FreeBSD 12+ and OpenBSD <sys/event.h>: short filter; u_short flags;
        # u_int fflags; int64_t data; void *udata -- FreeBSD then uint64_t ext[4].
        fields = head + [("filter", "h", 1), ("flags", "H", 1), ("fflags", "I", 1), ("data", "q", 1), ("udata", ptr, 1)]
        if system == "freebsd":
            fields.append(("ext", "Q", 4))
    elif system in ("netbsd", "netbsd10"):
        # NetBSD <sys/event.h>: uint32_t filter, flags, fflags; int64_t data;
        # void *udata (intptr_t before 10) -- 11 adds uint64_t ext[4]; 10's
        # layout survives as struct kevent100 in <compat/sys/event.h>.
        fields = head + [("filter", "I", 1), ("flags", "I", 1), ("fflags", "I", 1), ("data", "q", 1), ("udata", ptr, 1)]
        if system == "netbsd":
            fields.append(("ext", "Q", 4))
    else:
        raise ValueError(f"no struct kevent known for {system!r}")
    if pointer_size not in (4, 8) or int64_align not in (4, 8):
        raise ValueError(f"unsupported ABI: {pointer_size}-byte pointers, int64 aligned to {int64_align}")
    fmt, offsets, ctype, decode = _build(f"kevent_{system}_{pointer_size * 8}", fields, int64_align)
    # time_t is 64-bit everywhere here except FreeBSD/i386 (4 bytes, the one
    # ABI with 4-aligned int64) and 32-bit macOS (long); tv_nsec is a long.
    if system == "darwin":
        sec = sptr
    elif system == "freebsd" and pointer_size == 4 and int64_align == 4:
        sec = "i"
    else:
        sec = "q"
    timespec = _build("timespec", [("tv_sec", sec, 1), ("tv_nsec", sptr, 1)], int64_align)[0]
    symbol = {"netbsd": "__kevent100", "netbsd10": "__kevent50"}.get(system, "kevent")
    count = ctypes.c_size_t if system.startswith("netbsd") else ctypes.c_int
    return KeventLayout(system, pointer_size, fmt, decode, offsets, ctype, symbol, count, timespec)


def _system() -> str | None:
    """The one place the layout is chosen: by what this interpreter runs on.

    FreeBSD 12 grew ``ext[4]`` and versioned the symbol: libc keeps the old
    ``kevent@FBSD_1.0`` for binaries linked before, and exports the new one
    as the default version ``kevent@@FBSD_1.5``, which is what an
    unversioned ``dlsym`` -- ctypes' lookup -- resolves to.  NetBSD renames
    in its headers instead, so plain ``kevent`` is the oldest compatibility
    entry (32-bit ``time_t``); we probe for the newest entry point instead.
    """
    platform = sys.platform
    if platform == "darwin" or platform.startswith("dragonfly"):
        return "darwin"
    if platform.startswith("freebsd"):
        return "freebsd"
    if platform.startswith("openbsd"):
        return "openbsd"
    if platform.startswith("netbsd"):
        return "netbsd" if hasattr(libc, "__kevent100") else "netbsd10"
    return None  # Linux, Windows...: no kqueue


SYSTEM = _system()
LAYOUT = kevent_layout(SYSTEM, POINTER_SIZE, ctypes.alignment(ctypes.c_int64)) if SYSTEM else None

_kevent = _kqueue = _kqueue1 = None
if LAYOUT is not None:  # pragma: no cover - BSD and macOS only
    _kevent = getattr(libc, LAYOUT.symbol, None)
    if _kevent is not None:
        _kevent.restype = ctypes.c_int
        _kevent.argtypes = (ctypes.c_int, ctypes.c_void_p, LAYOUT.count, ctypes.c_void_p, LAYOUT.count, ctypes.c_void_p)
        _kqueue = libc.kqueue
        _kqueue.restype, _kqueue.argtypes = ctypes.c_int, ()
        # NetBSD 6+, FreeBSD 14+ and recent OpenBSD; absent on macOS.
        _kqueue1 = getattr(libc, "kqueue1", None)
        if _kqueue1 is not None:
            _kqueue1.restype, _kqueue1.argtypes = ctypes.c_int, (ctypes.c_int,)
    EVFILT_READ, EVFILT_WRITE, EVFILT_SIGNAL, EVFILT_TIMER = _FILTERS[SYSTEM]
    _KEVENT = struct.Struct(LAYOUT.format)
    _TIMESPEC = struct.Struct(LAYOUT.timespec)
    _DECODE = struct.Struct(LAYOUT.decode)
    _ZEROS = (0,) * (len(_KEVENT.unpack(bytes(_KEVENT.size))) - 3)  # fflags, data, udata, ext...
    _BITS = ((READABLE, EVFILT_READ), (WRITABLE, EVFILT_WRITE))

# Enough ready records per cycle to amortise the call; more wait one cycle.
MAX_EVENTS = 1024


def _open() -> int:
    """A new kqueue fd, close-on-exec."""
    if _kqueue1 is not None:
        kq = _kqueue1(os.O_CLOEXEC)
        if kq >= 0:
            return kq
        exc = os_error()
        if exc.errno != errno.EINVAL:  # EINVAL: this kqueue1 does not take O_CLOEXEC
            raise exc
    kq = _kqueue()
    if kq < 0:
        raise os_error()
    # Racy in principle -- another thread's fork+exec could land between the
    # two calls -- but a kqueue is not copied by fork() on any of these
    # systems, so only an exec by this very process could inherit it.
    os.set_inheritable(kq, False)
    return kq


def available() -> bool:
    """Whether kqueue can be used here: a known layout, the symbols, and a queue that opens."""
    if _kevent is None:
        return False
    try:
        os.close(_open())
    except OSError:
        return False
    return True


class SocketIoPool(Contract):
    """A fixed-capacity interest set on a kqueue (close-on-exec)."""

    backend = "kqueue"

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if _kevent is None:
            from ..errors import BackendUnavailableError

            raise BackendUnavailableError("kqueue is not available on this system")
        super().__init__(capacity)
        size = _KEVENT.size
        # Up to two records per fd (one per filter).
        self._nevents = min(2 * capacity, MAX_EVENTS)
        self._ready = ctypes.create_string_buffer(self._nevents * size)
        self._ready_view = memoryview(self._ready).cast("B")
        self._changes = ctypes.create_string_buffer(2 * size)  # never more than two at once
        self._receipts = ctypes.create_string_buffer(2 * size)  # one EV_RECEIPT slot per change
        self._receipts_view = memoryview(self._receipts).cast("B")
        self._zero = ctypes.create_string_buffer(_TIMESPEC.size)  # registration never waits
        self._timeout = ctypes.create_string_buffer(_TIMESPEC.size)
        self._armed: dict = {}  # fd -> the filters' flags in the kernel (the base class forgets before _remove)
        self._kq = _open()

    def fileno(self) -> int:
        """The kqueue's own fd.

        On macOS and the BSDs it can itself be watched -- by another kqueue,
        poll(2) or select -- and is readable while events are pending.  That
        is the kernels' behaviour, not kqueue's contract: a userspace kqueue
        (libkqueue on Linux) need not offer it.
        """
        return self._kq

    def _apply(self, changes: list) -> list:
        """Submit ``(fd, filter, action)`` changes; return each one's errno (0: done)."""
        size = _KEVENT.size
        for i, (fd, filt, action) in enumerate(changes):
            _KEVENT.pack_into(self._changes, i * size, fd, filt, action | EV_RECEIPT, *_ZEROS)
        n = len(changes)
        got = _kevent(self._kq, self._changes, n, self._receipts, n, self._zero)
        if got < 0:
            raise os_error()
        outcome = {}
        for ident, filt, flags, _fflags, data in _DECODE.iter_unpack(self._receipts_view[: got * size]):
            if flags & EV_ERROR:
                outcome[ident, filt] = data
        return [outcome.get((fd, filt), 0) for fd, filt, _action in changes]

    def _change(self, fd: int, add: int, drop: int) -> None:
        """Add the filters for the flags in ``add``, delete those in ``drop``; all or nothing."""
        changes = [(fd, filt, EV_ADD) for bit, filt in _BITS if add & bit]
        changes += [(fd, filt, EV_DELETE) for bit, filt in _BITS if drop & bit]
        results = self._apply(changes)
        failed = [err for err in results if err]
        if failed:
            undo = [(f, filt, EV_DELETE if act == EV_ADD else EV_ADD) for (f, filt, act), err in zip(changes, results) if not err]
            if undo:
                try:
                    self._apply(undo)
                except OSError:
                    pass  # best effort: the fd is most likely gone already; report the first error
            raise OSError(failed[0], os.strerror(failed[0]))

    def _add(self, fd: int, events: int) -> None:
        self._change(fd, events, 0)
        self._armed[fd] = events

    def _modify(self, fd: int, events: int) -> None:
        old = self._armed[fd]
        self._change(fd, events & ~old, old & ~events)
        self._armed[fd] = events

    def _remove(self, fd: int) -> None:
        armed = self._armed.pop(fd)
        results = self._apply([(fd, filt, EV_DELETE) for bit, filt in _BITS if armed & bit])
        for err in results:
            # Closing the fd already dropped its knotes: EBADF if the number
            # is free, ENOENT if it names a file this kqueue never saw.
            if err and not fd_is_gone(err):
                raise OSError(err, os.strerror(err))

    def _wait(self, ms: int) -> list:
        if ms < 0:
            timeout = None  # NULL: block
        else:
            _TIMESPEC.pack_into(self._timeout, 0, ms // 1000, (ms % 1000) * 1000000)
            timeout = self._timeout
        n = _kevent(self._kq, None, 0, self._ready, self._nevents, timeout)
        self.truncated = n == self._nevents
        if n <= 0:
            if n < 0:
                raise os_error()
            return []
        read = EVFILT_READ
        ready: dict = {}
        for ident, filt, flags, fflags, _data in _DECODE.iter_unpack(self._ready_view[: n * _KEVENT.size]):
            bits = READABLE if filt == read else WRITABLE
            if flags & (EV_EOF | EV_ERROR):
                if flags & EV_ERROR:
                    bits = ERROR
                elif bits == READABLE:
                    bits = READABLE | HANGUP | ERROR if fflags else READABLE | HANGUP
                else:
                    bits |= HANGUP | ERROR
            ready[ident] = ready.get(ident, 0) | bits
        return list(ready.items())

    def _close(self) -> None:
        self._armed.clear()
        os.close(self._kq)
        self._kq = -1
