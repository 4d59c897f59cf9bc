"""epoll(7) through ctypes: Linux's O(ready) readiness multiplexer.

Facts about epoll that shaped this module:

* **It tracks open file descriptions, not fd numbers.**  A registration is
  keyed by (fd number, file description).  Closing the fd removes the
  registration only when the *last* reference to the description goes --
  so after ``dup()`` or ``fork()`` a closed fd can keep reporting events
  under a number that no longer exists (or now names another file), and
  ``EPOLL_CTL_DEL`` on that number fails with ``EBADF``.  poorio's rule:
  remove before you close.  poorio's own IO objects do so (via
  ``notify_closing``); ``remove`` tolerates ``EBADF``/``ENOENT`` so an fd
  closed first can still be forgotten.  A registration that outlived its fd
  anyway can be reached only by a new epoll instance: ``rebuild()`` makes
  one from the registrations the pool holds (the event layer does so when
  the kernel reports an fd it never registered).
* **Level-triggered, persistent registrations.**  Edge-triggered mode saves
  a wake-up per event but makes every consumer drain to ``EAGAIN`` or hang,
  and one-shot mode costs an ``epoll_ctl`` to re-arm after every event.
  We keep an fd registered while anyone might want it and let the event
  layer above drop interest lazily, so a busy connection costs no
  ``epoll_ctl`` at all between reads.
* **The ready buffer is ours.**  ``epoll_wait`` writes into a preallocated
  array of ``maxevents`` records that we decode in bulk with
  ``struct.iter_unpack`` -- reading ctypes ``Structure`` fields one at a
  time is 10-20x slower, dramatically so on PyPy.  Events beyond
  ``maxevents`` wait for the next cycle; level triggering means none is lost.
* **``struct epoll_event`` is packed on x86** (glibc's ``__EPOLL_PACKED``,
  set for ``__x86_64__``, which includes x32): a ``uint32_t`` then a
  ``uint64_t`` with no padding, 12 bytes.  Everywhere else (aarch64, arm,
  ppc64, s390x, riscv64...) it is naturally aligned, 16 bytes.  On i386 the
  two agree, since a ``uint64_t`` is 4-aligned there anyway.
* ``EPOLLIN``/``EPOLLOUT``/``EPOLLERR``/``EPOLLHUP`` equal ``POLLIN`` ...
  ``POLLHUP`` on every architecture, which are poorio's portable flags, so
  translating a ready record costs one AND.
* ``EPOLL_CLOEXEC`` equals ``O_CLOEXEC``, which differs between
  architectures; we take it from the ``os`` module.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys

from ._base import DEFAULT_CAPACITY, ERROR, HANGUP, READABLE, WRITABLE, SocketIoPool as Contract, fd_is_gone
from ._libc import MULTIARCH, bind, os_error

__all__ = ["SocketIoPool", "epoll_event", "available", "PACKED", "EVENT_FORMAT"]

EPOLLIN = 0x001
EPOLLOUT = 0x004
EPOLLERR = 0x008
EPOLLHUP = 0x010
EPOLL_CTL_ADD = 1
EPOLL_CTL_DEL = 2
EPOLL_CTL_MOD = 3
EPOLL_CLOEXEC = getattr(os, "O_CLOEXEC", 0o2000000)

# EPOLLIN..EPOLLHUP are poorio's READABLE..HANGUP bit for bit (tests/test_abi.py
# checks it), so _wait translates a ready record with one AND.
_MASK = READABLE | WRITABLE | ERROR | HANGUP


def _packed_for(multiarch: str) -> bool:
    """Whether ``struct epoll_event`` is packed for this target triplet.

    glibc's x86 ``bits/epoll.h`` defines ``__EPOLL_PACKED`` as
    ``__attribute__((packed))`` for every x86 target (i386, x86_64, and x32,
    whose triplet is ``x86_64-linux-gnux32``); the kernel's
    ``uapi/linux/eventpoll.h`` packs for ``__x86_64__``, and on i386 a
    ``uint64_t`` is 4-aligned anyway.  Every other ``sys/epoll.h`` leaves
    ``__EPOLL_PACKED`` empty.
    """
    return multiarch.startswith(("x86_64-", "i386-", "i486-", "i586-", "i686-"))


# The one place the layout is chosen -- from the interpreter's own target
# triplet (see _libc.MULTIARCH), never from platform.machine().
PACKED = _packed_for(MULTIARCH)

if PACKED:
    EVENT_FORMAT = "=IQ"  # uint32 events; uint64 data -- no padding: 12 bytes

    class epoll_event(ctypes.Structure):
        """``struct epoll_event`` as glibc packs it on x86: 12 bytes."""

        _pack_ = 1
        _layout_ = "ms"  # Python 3.14+ wants this with _pack_; older ones ignore it
        _fields_ = [("events", ctypes.c_uint32), ("data", ctypes.c_uint64)]

else:

    class epoll_event(ctypes.Structure):  # type: ignore[no-redef]
        """``struct epoll_event`` naturally aligned: 16 bytes on every 64-bit ABI and 32-bit ARM."""

        _fields_ = [("events", ctypes.c_uint32), ("data", ctypes.c_uint64)]

    # uint32 events; padding up to data's alignment, as the C compiler (and so
    # ctypes) lays it out: 4 bytes on every ABI poorio knows; uint64 data.
    EVENT_FORMAT = f"=I{epoll_event.data.offset - 4}xQ"


_EVENT = struct.Struct(EVENT_FORMAT)

if sys.platform.startswith("linux"):
    _create1 = bind("epoll_create1", ctypes.c_int, ctypes.c_int)
    _ctl = bind("epoll_ctl", ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
    _wait = bind("epoll_wait", ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int)
else:  # pragma: no cover - not Linux
    _create1 = _ctl = _wait = None

# Enough ready records per cycle to amortise the call; more wait one cycle.
MAX_EVENTS = 1024


def available() -> bool:
    """Whether epoll can be used here: the symbols exist and an instance opens."""
    if _create1 is None:
        return False
    epfd = _create1(EPOLL_CLOEXEC)
    if epfd < 0:
        return False
    os.close(epfd)
    return True


class SocketIoPool(Contract):
    """A fixed-capacity interest set on an epoll instance (close-on-exec)."""

    backend = "epoll"

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if _create1 is None:
            from ..errors import BackendUnavailableError

            raise BackendUnavailableError("epoll is not available on this system")
        super().__init__(capacity)
        epfd = _create1(EPOLL_CLOEXEC)
        if epfd < 0:
            raise os_error()
        self._epfd = epfd
        self._maxevents = min(capacity, MAX_EVENTS)
        self._ready = ctypes.create_string_buffer(self._maxevents * _EVENT.size)
        self._ready_view = memoryview(self._ready).cast("B")
        self._one = ctypes.create_string_buffer(_EVENT.size)  # epoll_ctl's argument
        # Raw addresses, kept beside the buffers that own them: PyPy converts a
        # buffer object to c_void_p at ~50 us a call, an int at almost nothing.
        self._ready_addr = ctypes.addressof(self._ready)
        self._one_addr = ctypes.addressof(self._one)

    def fileno(self) -> int:
        """The epoll instance's own fd.

        It can itself be watched -- by poll(2), select or another epoll set --
        and is readable while events are pending (Linux's epoll(7) documents
        it), so one loop can nest inside another.
        """
        return self._epfd

    def _control(self, op: int, fd: int, events: int) -> None:
        _EVENT.pack_into(self._one, 0, events, fd)
        if _ctl(self._epfd, op, fd, self._one_addr) < 0:
            raise os_error()

    def _add(self, fd: int, events: int) -> None:
        self._control(EPOLL_CTL_ADD, fd, events)

    def _modify(self, fd: int, events: int) -> None:
        self._control(EPOLL_CTL_MOD, fd, events)

    def _remove(self, fd: int) -> None:
        if _ctl(self._epfd, EPOLL_CTL_DEL, fd, None) < 0:
            exc = os_error()
            if not fd_is_gone(exc):
                raise exc

    def _wait(self, ms: int) -> list:
        n = _wait(self._epfd, self._ready_addr, self._maxevents, ms)
        self.truncated = n == self._maxevents
        if n <= 0:
            if n < 0:
                raise os_error()
            return []
        mask = _MASK
        return [(fd, events & mask) for events, fd in _EVENT.iter_unpack(self._ready_view[: n * _EVENT.size])]

    def _rebuild(self) -> None:
        epfd = _create1(EPOLL_CLOEXEC)
        if epfd < 0:
            raise os_error()
        old, self._epfd = self._epfd, epfd
        os.close(old)  # and with it every registration, the stale ones too
        for fd, events in self._events.items():
            try:
                self._control(EPOLL_CTL_ADD, fd, events)
            except OSError as error:
                if not fd_is_gone(error):  # closed meanwhile: its later remove() forgives that
                    raise

    def _close(self) -> None:
        os.close(self._epfd)
        self._epfd = -1
