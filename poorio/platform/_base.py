"""What every ``SocketIoPool`` shares: bookkeeping, timeouts, statistics.

A mechanism module subclasses ``SocketIoPool`` and supplies four primitives:
``_add(fd, events)``, ``_modify(fd, events)``, ``_remove(fd)`` and
``_wait(timeout_ms) -> [(fd, flags), ...]``.  Everything users can get wrong
(capacity, duplicates, unknown fds, bad timeouts, use after close) is checked
here, once, so the backends stay small and identical in behaviour.
"""

from __future__ import annotations

import errno
import math
import time
import weakref

from ..errors import AlreadyRegisteredError, ClosedResourceError, NotRegisteredError, PoolFullError
from ..record import Record
from ._libc import fileno

__all__ = [
    "SocketIoPool", "timeout_ms", "PoolStatistics", "READABLE", "WRITABLE", "ERROR", "HANGUP", "INTEREST",
    "DEFAULT_CAPACITY", "MAX_CAPACITY", "FALLBACK_CAPACITY", "default_capacity", "check_capacity", "fd_is_gone",
    "open_pools",
]  # fmt: skip

# The portable event vocabulary.  The values are POSIX poll(2)'s POLLIN,
# POLLOUT, POLLERR and POLLHUP, which Linux also uses for EPOLLIN, EPOLLOUT,
# EPOLLERR and EPOLLHUP on every architecture -- so on Linux and the BSDs the
# translation costs one AND.  Backends with other values (WSAPoll) map them.
READABLE = 0x001
WRITABLE = 0x004
ERROR = 0x008  # reported whether asked for or not
HANGUP = 0x010  # reported whether asked for or not
INTEREST = READABLE | WRITABLE  # what may be asked for

DEFAULT_CAPACITY = 1024  # a bare pool's; event sets and schedulers default to default_capacity()
# An fd is a C int, so no pool can ever hold more distinct fds than this; a
# larger capacity is a mistake, refused rather than half-honoured.
MAX_CAPACITY = 2**31 - 1
# Where the fd limit cannot be read (Windows has none for sockets).
FALLBACK_CAPACITY = 4096

# epoll_wait and poll take an int of milliseconds; clamp far-future timeouts
# (about 24.8 days) rather than overflow into "negative = forever".
_MAX_TIMEOUT_MS = 2**31 - 1


_OPEN = weakref.WeakSet()  # every pool not yet closed (weakly: a dropped pool leaves it when collected)


def open_pools() -> list:
    """Every pool made and not yet closed, in no order -- a debugging aid.

    Event sets and schedulers own one each, so this also shows the ones left
    open.  poorio's test suite checks after each test that it opened none
    it did not close.  A pool dropped without ``close()`` leaves the list
    once it is garbage-collected.
    """
    return [pool for pool in list(_OPEN) if not pool._closed]


def default_capacity() -> int:
    """How many fds an event set or scheduler watches unless told: the process's fd limit.

    A process cannot open more fds than its soft ``RLIMIT_NOFILE``, so a
    pool of that size is never the first thing to run out: the kernel's
    ``EMFILE`` comes first.  Read at each call, so a program that raises
    its limit first gets a pool to match.  No pool allocates for its whole
    capacity up front (poll's array grows as fds come), so a large limit
    costs nothing until it is used.  ``FALLBACK_CAPACITY`` where the limit
    cannot be read (Windows).
    """
    try:
        import resource  # on first use, not with poorio: a bare pool never asks
    except ImportError:  # Windows: no fd limit to read
        return FALLBACK_CAPACITY
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return FALLBACK_CAPACITY
    if soft == resource.RLIM_INFINITY or soft > MAX_CAPACITY:
        return MAX_CAPACITY
    return soft if soft > 0 else FALLBACK_CAPACITY


def check_capacity(capacity, limit: int = MAX_CAPACITY) -> int:
    """``capacity`` if it is an int from 1 to ``limit``.

    Raises:
        ValueError: anything else -- a bool, a float, zero, or more fds than
            any process can hold (``MAX_CAPACITY``; an fd is a C int).
    """
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= limit:
        raise ValueError(f"capacity must be an int from 1 to {limit} (an fd is a C int), not {capacity!r}")
    return capacity


class PoolStatistics(Record):
    """A frozen snapshot: which backend, how many fds it may hold, how many it does."""

    __slots__ = ("backend", "capacity", "size")


def fd_is_gone(error) -> bool:
    """Whether an fd call failed (``error``: an ``OSError`` or an errno) only because the fd was already closed.

    Closing an fd drops it from an epoll set and a kqueue by itself, so a
    later explicit removal meets ``EBADF`` (the number is free) or
    ``ENOENT`` (the number was reused by a file the kernel never saw there).
    """
    code = error if type(error) is int else error.errno
    return code == errno.EBADF or code == errno.ENOENT


def timeout_ms(timeout: float | None) -> int:
    """Seconds (or None = forever) to the kernel's milliseconds.

    Rounded *up*: a wait must last at least as long as asked, or a timer
    loop would wake a hair early and spin once more for nothing.  Infinity
    means forever; finite waits beyond the kernel's limit are clamped to it.

    Raises:
        ValueError: ``timeout`` is NaN.
    """
    if timeout is None:
        return -1
    if timeout <= 0:
        return 0
    ms = timeout * 1000.0
    if ms < _MAX_TIMEOUT_MS:
        return math.ceil(ms)
    if ms == math.inf:  # the "no deadline" of schedulers that keep deadlines as floats
        return -1
    if ms != ms:
        raise ValueError("timeout must be a number of seconds, not NaN")
    return _MAX_TIMEOUT_MS


class _ChoosesBackend(type):
    """Makes ``SocketIoPool(capacity, backend=None)`` a pool of the chosen backend's class."""

    def __call__(cls, *args, **kwargs):
        if cls is SocketIoPool:
            from . import new_pool  # the one place the backend is chosen

            return new_pool(*args, **kwargs)
        return super().__call__(*args, **kwargs)


class SocketIoPool(metaclass=_ChoosesBackend):
    """A fixed-capacity, level-triggered interest set of fds: the contract every backend's pool keeps.

    ``SocketIoPool(capacity, backend=None)`` makes one of the best backend
    here (or of ``backend``): an instance of that mechanism module's own
    ``SocketIoPool``, a subclass of this one.  Registrations are persistent:
    an fd stays in the set, reported on every ``cycle`` while it is ready,
    until ``remove``.  Subclasses set ``backend`` and implement the four
    primitives.
    """

    backend = "abstract"
    # The proactor (``uring.Ring``) sharing this pool's wait, where there is
    # one: operations submitted to it complete during ``cycle``, which then
    # returns early, and their completions are in ``proactor.completions()``.
    proactor = None

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = check_capacity(capacity)
        self.truncated = False  # the last cycle filled its buffer: more fds may be ready than it returned
        self._events: dict = {}  # fd -> the interest flags registered for it
        self._closed = False
        _OPEN.add(self)

    # -- the public interface --------------------------------------------------

    def add(self, fd, events: int) -> None:
        """Watch ``fd`` (an int or an object with ``fileno()``) for ``events``.

        Raises:
            PoolFullError: the pool already holds ``capacity`` fds.
            AlreadyRegisteredError: ``fd`` is already in the pool.
            ValueError: ``events`` asks for something other than READABLE/WRITABLE,
                or ``fd`` is negative or not a file object.
            OSError: the kernel refused the fd (``EBADF`` for a closed one).
            ClosedResourceError: the pool is closed.
        """
        fd = fileno(fd)
        self._check_events(events)
        if self._closed:
            raise ClosedResourceError("the pool is closed")
        if fd in self._events:
            raise AlreadyRegisteredError(f"fd {fd} is already in the pool")
        if len(self._events) >= self.capacity:
            raise PoolFullError(f"the pool is full: it holds its capacity of {self.capacity} fds")
        self._add(fd, events)
        self._events[fd] = events

    def modify(self, fd, events: int) -> None:
        """Change what a registered fd is watched for.

        Raises:
            NotRegisteredError: ``fd`` is not in the pool.
            ValueError: ``events`` is not a combination of READABLE and WRITABLE.
            ClosedResourceError: the pool is closed.
        """
        fd = fileno(fd)
        self._check_events(events)
        if fd not in self._events:
            raise self._unknown(fd)
        if self._events[fd] != events:
            self._modify(fd, events)
            self._events[fd] = events

    def remove(self, fd) -> None:
        """Stop watching ``fd``.  Safe after the fd was closed.

        Raises:
            NotRegisteredError: ``fd`` is not in the pool.
            ClosedResourceError: the pool is closed.
        """
        fd = fileno(fd)
        if fd not in self._events:
            raise self._unknown(fd)
        del self._events[fd]
        self._remove(fd)

    def cycle(self, timeout: float | None = None) -> list[tuple[int, int]]:
        """Wait up to ``timeout`` seconds (None: forever, 0: not at all).

        Returns the ready ``(fd, flags)`` pairs, flags drawn from READABLE,
        WRITABLE, ERROR and HANGUP; an empty list when the time ran out.
        A backend may return at most a buffer's worth of fds per cycle
        (epoll, kqueue: 1,024); ``truncated`` then says so, and a further
        ``cycle(0)`` returns the others (the ready list rotates).  A
        signal that interrupts the wait (even a ``timeout=0`` one) does not end it early: the wait is
        resumed for the time remaining (PEP 475), after any Python signal
        handler has run -- and if that handler raises, so does ``cycle``.

        Raises:
            ClosedResourceError: the pool is closed.
            ValueError: ``timeout`` is NaN.
            OSError: the kernel call failed (other than by ``EINTR``).
        """
        if self._closed:
            raise ClosedResourceError("the pool is closed")
        ms = timeout_ms(timeout)
        if ms == 0:
            while True:
                try:
                    return self._wait(0)
                except InterruptedError:
                    # Even a poll that never blocks is interrupted by a signal
                    # that lands while the kernel scans a long array: retried,
                    # as PEP 475 has it, once the handler has run.
                    pass
        deadline = time.monotonic() + ms / 1000.0 if ms > 0 else None
        while True:
            try:
                return self._wait(ms)
            except InterruptedError:
                # A blocking wait (ms < 0) is resumed as it was; a timed one
                # for what remains of it.
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return []
                    ms = timeout_ms(remaining)

    def rebuild(self) -> None:
        """Make the kernel object afresh from the registrations this pool holds.

        For a registration the kernel keeps behind the pool's back: epoll
        reports a closed fd whose file lives on in a duplicate (a forked
        child, ``dup()``) under its old number, and no removal can reach it
        any more -- only a new epoll instance drops it.  Backends whose kernel
        keeps no such state (poll, WSAPoll, kqueue, which forgets an fd on
        close) do nothing.

        Raises:
            ClosedResourceError: the pool is closed.
            OSError: the kernel refused a new instance, unmodified.
        """
        if self._closed:
            raise ClosedResourceError("the pool is closed")
        self._rebuild()

    def fds(self):
        """A view of the registered fds."""
        return self._events.keys()

    def interest(self, fd) -> int:
        """What ``fd`` is registered for. Raises ``NotRegisteredError``."""
        fd = fileno(fd)
        try:
            return self._events[fd]
        except KeyError:
            raise NotRegisteredError(f"fd {fd} is not in the pool") from None

    def statistics(self) -> PoolStatistics:
        return PoolStatistics(self.backend, self.capacity, len(self._events))

    def close(self) -> None:
        """Release the kernel object; idempotent. Registered fds are not closed."""
        if not self._closed:
            self._closed = True
            self._events.clear()
            _OPEN.discard(self)
            self._close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._events)

    def __contains__(self, fd) -> bool:
        try:
            return fileno(fd) in self._events
        except ValueError:
            return False

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._events)}/{self.capacity} fds"
        return f"<{type(self).__name__} {self.backend} {state}>"

    # -- helpers for subclasses ------------------------------------------------

    def _unknown(self, fd: int) -> Exception:
        """The error for an fd that is not registered (off the hot path)."""
        if self._closed:  # close() forgot every fd: say why, not just "unknown"
            return ClosedResourceError("the pool is closed")
        return NotRegisteredError(f"fd {fd} is not in the pool")

    @staticmethod
    def _check_events(events: int) -> None:
        if not isinstance(events, int) or events & ~INTEREST or not events:
            raise ValueError(f"events must combine READABLE and WRITABLE, not {events!r}")

    # -- the primitives --------------------------------------------------------

    def _add(self, fd: int, events: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _modify(self, fd: int, events: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _remove(self, fd: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _wait(self, ms: int) -> list[tuple[int, int]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _rebuild(self) -> None:
        """The kernel keeps no registration of its own (the default): nothing to do."""

    def _close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
