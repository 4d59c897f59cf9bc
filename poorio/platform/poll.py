"""poll(2): the portable backend, and the array pool it shares with WSAPoll.

poll(2) is everywhere POSIX is, which makes it the fallback when nothing
better can be found -- and the backend CI forces with ``POORIO_BACKEND=poll``
so it never rots.  Its sharp edges:

* The kernel scans the whole array on every call, so a cycle costs O(n) in
  the number of registered fds however few are ready.  We cannot fix that
  (epoll and kqueue exist because of it); we only make sure the Python side
  adds no more than one C-speed pass over the array.
* There is no kernel object: the interest set *is* the array we pass in, so
  registering and unregistering cost no syscall at all.
* A closed fd left in the array is reported as ``POLLNVAL`` on every call
  instead of silently dropping out (as it does from epoll).  We report it as
  ``ERROR`` so the owner notices, rather than spin on it unseen.
* ``nfds_t`` is ``unsigned long`` on Linux but ``unsigned int`` on the BSDs
  and macOS.

The original Lua ``SocketIoPool`` scanned its slots linearly to find a free
one.  Here the array is kept dense instead: slot ``i`` holds the i-th
registered fd, ``len(fds)`` slots are in use, and removal moves the last
entry into the hole (swap-remove) and patches its index.  Add and remove are
O(1) and the kernel only ever sees live entries.

The array is not allocated for the whole capacity up front: it starts
small and doubles when it fills, up to the capacity.  A pool sized to a
process's fd limit (a million, in some containers) then costs memory only
for the fds it actually watches.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
from itertools import compress

from ._base import DEFAULT_CAPACITY, ERROR, HANGUP, READABLE, WRITABLE, SocketIoPool as Contract
from ._libc import bind, os_error

# Records in a new pool's array; it doubles from here as fds are added.
_FIRST_SIZE = 64

__all__ = ["SocketIoPool", "ArrayPool", "pollfd", "available", "POLLIN", "POLLOUT", "POLLERR", "POLLHUP", "POLLNVAL"]

# Values from <poll.h>; identical on Linux (every architecture), the BSDs and macOS.
POLLIN = 0x001
POLLPRI = 0x002
POLLOUT = 0x004
POLLERR = 0x008
POLLHUP = 0x010
POLLNVAL = 0x020


class pollfd(ctypes.Structure):
    """``struct pollfd`` -- 8 bytes on every POSIX ABI: int fd; short events; short revents."""

    _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short)]


_nfds_t = ctypes.c_ulong if sys.platform.startswith("linux") else ctypes.c_uint
_poll = bind("poll", ctypes.c_int, ctypes.c_void_p, _nfds_t, ctypes.c_int) if sys.platform != "win32" else None


def available() -> bool:
    """Whether poll(2) can be called here."""
    return _poll is not None


def _translation(size: int, pairs) -> list:
    """A lookup table from native revents bits (masked to ``size - 1``) to poorio flags."""
    table = []
    for native in range(size):
        flags = 0
        for bit, ours in pairs:
            if native & bit:
                flags |= ours
        table.append(flags)
    return table


class ArrayPool(Contract):
    """A dense, fixed-size array of poll records: the shape of poll(2) and WSAPoll.

    A subclass describes its record (``_record`` struct format, ``_record_type``
    ctypes type, ``_revents_offset``), its flags (``_to_native``, ``_from_native``),
    and the call (``_call(array, n, ms) -> int``, negative on failure).
    """

    _record = struct.Struct("=ihh")  # fd, events, revents
    _record_type = pollfd
    _revents_offset = 6
    _to_native = {READABLE: POLLIN, WRITABLE: POLLOUT, READABLE | WRITABLE: POLLIN | POLLOUT}
    _from_native = _translation(
        64, [(POLLIN, READABLE), (POLLOUT, WRITABLE), (POLLERR, ERROR), (POLLHUP, HANGUP), (POLLNVAL, ERROR)]
    )

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        super().__init__(capacity)
        self._stride = self._record.size // 2
        self._rev_index = self._revents_offset // 2
        self._table_mask = len(self._from_native) - 1
        self._fds: list = []  # slot -> fd; len(_fds) slots are live, the rest are free
        self._slots: dict = {}  # fd -> slot; the inverse of _fds
        self._allocate(min(capacity, _FIRST_SIZE))

    def _allocate(self, size: int) -> None:
        """A new array of ``size`` records holding the live ones (``size`` <= capacity)."""
        array = (self._record_type * size)()
        view = memoryview(array).cast("B")
        live = len(self._fds) * self._record.size
        if live:
            view[:live] = self._bytes[:live]
        self._array = array
        self._bytes = view
        # The array's raw address: PyPy converts a ctypes object argument at
        # ~50 us a call, an int at almost nothing.  self._array keeps it alive.
        self._address = ctypes.addressof(array)
        # revents as a strided view of shorts: one C-speed slice per cycle.
        self._shorts = view.cast("h")
        self._size = size

    def _validate(self, fd: int) -> None:
        # poll(2) would accept a closed fd and report POLLNVAL later; say EBADF
        # now, as epoll_ctl and kevent do, so every backend behaves alike.
        os.get_inheritable(fd)

    def _add(self, fd: int, events: int) -> None:
        self._validate(fd)
        slot = len(self._fds)
        if slot == self._size:  # the base class has checked the capacity: there is room to grow
            self._allocate(min(2 * self._size, self.capacity))
        self._record.pack_into(self._bytes, slot * self._record.size, fd, self._to_native[events], 0)
        self._fds.append(fd)
        self._slots[fd] = slot

    def _modify(self, fd: int, events: int) -> None:
        slot = self._slots[fd]
        self._record.pack_into(self._bytes, slot * self._record.size, fd, self._to_native[events], 0)

    def _remove(self, fd: int) -> None:
        slot = self._slots.pop(fd)
        last = len(self._fds) - 1
        size = self._record.size
        if slot != last:
            moved = self._fds[last]
            self._fds[slot] = moved
            self._slots[moved] = slot
            self._bytes[slot * size : slot * size + size] = self._bytes[last * size : last * size + size]
        self._fds.pop()
        self._record.pack_into(self._bytes, last * size, -1, 0, 0)

    def _wait(self, ms: int) -> list:
        n = len(self._fds)
        ready = self._call(self._address, n, ms)
        if ready <= 0:
            if ready < 0:
                raise os_error()
            return []
        stride = self._stride
        start = self._rev_index
        revents = self._shorts[start : start + n * stride : stride].tolist()
        fds = self._fds
        table = self._from_native
        mask = self._table_mask
        # compress() walks the array in C and hands us only the ready slots.
        return [(fds[i], table[revents[i] & mask]) for i in compress(range(n), revents)]

    def _close(self) -> None:
        self._fds.clear()
        self._slots.clear()

    @staticmethod
    def _call(array, n: int, ms: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


class SocketIoPool(ArrayPool):
    """A fixed-capacity interest set on poll(2)."""

    backend = "poll"

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if _poll is None:
            from ..errors import BackendUnavailableError

            raise BackendUnavailableError("poll(2) is not available on this system")
        super().__init__(capacity)

    _call = staticmethod(_poll) if _poll is not None else None
