"""A complete ``selectors.BaseSelector`` over poorio's ctypes pools, so stock asyncio runs on them.

``Selector`` behaves like the stdlib's ``DefaultSelector`` -- same keys, same
exceptions, same timeout rounding, same event translation -- but waits through
a ``poorio.platform.SocketIoPool`` instead of the ``select`` module: epoll,
kqueue, WSAPoll or poll(2), whichever poorio picks (``POORIO_BACKEND``
overrides).  ``EpollSelector``, ``KqueueSelector``, ``PollSelector`` and
``WSAPollSelector`` pin one backend each; constructing one that cannot run
here raises ``BackendUnavailableError``.  ``selector_classes()`` lists those
that can.

This module and ``poorio.aio`` are the only ones in poorio that import
``selectors``/``asyncio``: they are bridges to code that already exists, not
part of poorio's own IO stack.

Discussion -- where it differs from the stdlib, on purpose:

* **Capacity.**  A pool holds a fixed number of fds, chosen up front.  The
  default, ``default_capacity()``, is the process's own fd limit
  (``RLIMIT_NOFILE``): a program cannot open more fds than that, so the
  pool is never the first thing to run out.  Pass
  ``capacity=`` to bound memory on a small device.  Registering one fd too
  many raises ``PoolFullError`` -- a registration is never dropped silently.
* **Ready events per call.**  poorio's epoll pool decodes at most 1024 ready
  records per wait; with more fds ready at once the rest are reported by the
  next ``select()`` (registrations are level-triggered, so nothing is lost).
  The stdlib's ``EpollSelector`` sizes its buffer to the whole interest set.
* **After ``close()``** ``register``, ``modify`` and ``select`` raise
  ``ValueError``, as the stdlib's epoll and kqueue selectors do (its poll
  selector keeps working, which hides bugs).
"""

from __future__ import annotations

import selectors
import weakref
from collections.abc import Mapping

from .errors import BackendUnavailableError, PoolFullError
from .platform import ERROR, HANGUP, READABLE, WRITABLE, backend_module, backends, default_capacity, fileno, new_pool

__all__ = [
    "Selector",
    "EpollSelector",
    "KqueueSelector",
    "PollSelector",
    "WSAPollSelector",
    "UringSelector",
    "selector_classes",
    "new_selector",
    "default_capacity",
    "EVENT_READ",
    "EVENT_WRITE",
]

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE
_SELECTOR_EVENTS = EVENT_READ | EVENT_WRITE

# Selector events -> pool interest, indexed by the selector's events (1..3).
_TO_POOL = (0, READABLE, WRITABLE, READABLE | WRITABLE)


def _to_selector(flags: int) -> int:
    """The selector events a pool's ready flags stand for.

    As in the stdlib's poll and epoll selectors: any flag other than
    readable makes the fd writable, any flag other than writable makes it
    readable.  So an error or hang-up wakes both a reader and a writer
    (whichever was asked for), which then meets the real error in its own
    ``recv``/``send`` -- a failed ``connect`` reaches its writer this way.
    """
    events = 0
    if flags & ~READABLE:
        events |= EVENT_WRITE
    if flags & ~WRITABLE:
        events |= EVENT_READ
    return events


# Every combination of the four portable flags, decoded once.
_FROM_POOL = tuple(_to_selector(flags) for flags in range((READABLE | WRITABLE | ERROR | HANGUP) + 1))


class _KeyMapping(Mapping):
    """The read-only file object -> ``SelectorKey`` view that ``get_map()`` returns."""

    __slots__ = ("_selector",)

    def __init__(self, selector: Selector) -> None:
        self._selector = selector

    def __len__(self) -> int:
        return len(self._selector._keys)

    def __getitem__(self, fileobj) -> selectors.SelectorKey:
        selector = self._selector
        try:
            return selector._keys[selector._fd_of(fileobj)]
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None

    def __iter__(self):
        return iter(self._selector._keys)


class Selector(selectors.BaseSelector):
    """A ``selectors.BaseSelector`` on poorio's default backend.

    Parameters:
        capacity: how many fds it can hold (default: ``default_capacity()``).

    Raises:
        BackendUnavailableError: the class's backend cannot run here.
        ValueError: ``capacity`` is not a positive int.
    """

    #: The backend this class asks for; ``None`` is poorio's default one.
    BACKEND: str | None = None

    def __init__(self, capacity: int | None = None) -> None:
        pool = new_pool(default_capacity() if capacity is None else capacity, self.BACKEND)
        self._pool = pool
        self._keys: dict = {}  # fd -> SelectorKey; exactly the fds in the pool
        self._map: _KeyMapping | None = _KeyMapping(self)  # None once closed
        # A selector dropped without close() must not keep its kernel object
        # (an epoll or kqueue fd) open, as the stdlib's do not.
        self._finalizer = weakref.finalize(self, pool.close)

    # -- introspection -----------------------------------------------------------

    @property
    def backend(self) -> str:
        """The name of the backend this selector waits on (``"epoll"``, ``"poll"`` ...)."""
        return self._pool.backend

    @property
    def capacity(self) -> int:
        """How many fds this selector can hold at once."""
        return self._pool.capacity

    def statistics(self):
        """The pool's frozen ``PoolStatistics``: backend, capacity, size."""
        return self._pool.statistics()

    def __repr__(self) -> str:
        if self._map is None:
            return f"<{type(self).__name__} closed>"
        return f"<{type(self).__name__} {self._pool.backend} {len(self._keys)}/{self._pool.capacity} fds>"

    # -- the BaseSelector interface ----------------------------------------------

    def register(self, fileobj, events: int, data=None) -> selectors.SelectorKey:
        """Watch ``fileobj`` (an fd or an object with ``fileno()``) for ``events``.

        Returns the new ``SelectorKey``.

        Raises:
            ValueError: ``events`` is not EVENT_READ and/or EVENT_WRITE; the
                file object or fd is invalid; the selector is closed.
            KeyError: the fd is already registered.
            PoolFullError: the selector already holds ``capacity`` fds.
            OSError: the kernel refused the fd (``EBADF``; ``EPERM`` from epoll
                for a regular file).
        """
        if not isinstance(events, int) or not events or events & ~_SELECTOR_EVENTS:
            raise ValueError(f"Invalid events: {events!r}")
        fd = self._fd_of(fileobj)
        if fd in self._keys:
            raise KeyError(f"{fileobj!r} (FD {fd}) is already registered")
        self._check_open()
        try:
            self._pool.add(fd, _TO_POOL[events])
        except PoolFullError:
            raise PoolFullError(
                f"cannot register {fileobj!r}: this {self._pool.backend} selector already holds "
                f"its capacity of {self._pool.capacity} fds (pass a larger capacity= when creating it)"
            ) from None
        key = selectors.SelectorKey(fileobj, fd, events, data)
        self._keys[fd] = key
        return key

    def unregister(self, fileobj) -> selectors.SelectorKey:
        """Stop watching ``fileobj``; fine after it was closed.  Returns its key.

        Raises:
            KeyError: it is not registered.
        """
        try:
            key = self._keys.pop(self._fd_of(fileobj))
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None
        try:
            self._pool.remove(key.fd)
        except OSError:
            # As in the stdlib: the fd may have been closed since (the pool
            # already forgives EBADF/ENOENT); the key is gone either way.
            pass
        return key

    def modify(self, fileobj, events: int, data=None) -> selectors.SelectorKey:
        """Change the events or data of a registered file object.  Returns the new key.

        If the kernel refuses the change, the file object is unregistered
        before the error propagates, so the selector and the kernel never
        disagree about it (bpo-30014).

        Raises:
            KeyError: it is not registered.
            ValueError: ``events`` is invalid; the selector is closed.
            OSError: the kernel refused the change.
        """
        try:
            key = self._keys[self._fd_of(fileobj)]
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None
        if events != key.events:
            if not isinstance(events, int) or not events or events & ~_SELECTOR_EVENTS:
                raise ValueError(f"Invalid events: {events!r}")
            self._check_open()
            try:
                self._pool.modify(key.fd, _TO_POOL[events])
            except BaseException:
                self.unregister(fileobj)
                raise
            key = key._replace(events=events, data=data)
            self._keys[key.fd] = key
        elif data != key.data:
            key = key._replace(data=data)
            self._keys[key.fd] = key
        return key

    def select(self, timeout: float | None = None) -> list:
        """Wait until a registered file object is ready, or ``timeout`` seconds pass.

        ``None`` waits for ever; zero or less polls.  The wait is rounded up
        to the backend's millisecond resolution, and resumed after a signal
        whose handler returns (PEP 475) -- so it returns ``[]`` only when the
        time ran out.  If the handler raises, ``select`` raises that.

        Returns a list of ``(key, events)`` pairs, ``events`` the ready
        subset of what the key asked for.

        Raises:
            ValueError: the selector is closed.
        """
        if self._map is None:
            self._check_open()
        keys = self._keys
        table = _FROM_POOL
        pool = self._pool
        batch = pool.cycle(timeout)
        if pool.truncated:  # more are ready than one cycle returns: every one is reported, as the stdlib does
            batch = self._drain(batch)
        ready = []
        append = ready.append
        for fd, flags in batch:
            key = keys.get(fd)
            if key is not None:
                append((key, table[flags] & key.events))
        return ready

    def _drain(self, batch: list) -> list:
        """``batch`` plus the fds that a full buffer left out: zero-timeout cycles until one brings nothing new."""
        seen = {fd for fd, _ in batch}
        pool = self._pool
        while pool.truncated and len(seen) < len(self._keys):
            fresh = [(fd, flags) for fd, flags in pool.cycle(0) if fd not in seen]
            if not fresh:
                break
            seen.update(fd for fd, _ in fresh)
            batch.extend(fresh)
        return batch

    def get_key(self, fileobj) -> selectors.SelectorKey:
        """The ``SelectorKey`` of a registered file object.

        Raises:
            KeyError: it is not registered.
            RuntimeError: the selector is closed.
        """
        if self._map is None:
            raise RuntimeError("Selector is closed")
        try:
            return self._keys[self._fd_of(fileobj)]
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None

    def get_map(self) -> Mapping | None:
        """A read-only mapping of file objects to keys (``None`` once closed)."""
        return self._map

    def close(self) -> None:
        """Forget every registration and release the pool; idempotent.

        The registered file objects are not closed.
        """
        self._keys.clear()
        self._map = None
        self._finalizer()  # closes the pool, once

    # -- helpers -----------------------------------------------------------------

    def _fd_of(self, fileobj) -> int:
        """The fd of ``fileobj``, found among the keys if it can no longer say.

        A socket that was closed after registering answers ``fileno()`` with
        -1; searching the keys by identity still lets it be unregistered.

        Raises:
            ValueError: ``fileobj`` is not a valid, registered file object.
        """
        try:
            return fileno(fileobj)
        except ValueError:
            for key in self._keys.values():
                if key.fileobj is fileobj:
                    return key.fd
            raise

    def _check_open(self) -> None:
        if self._map is None:
            raise ValueError("I/O operation on a closed selector")


class EpollSelector(Selector):
    """A selector on Linux's epoll(7)."""

    BACKEND = "epoll"

    def fileno(self) -> int:
        """The epoll instance's fd."""
        return self._pool.fileno()


class KqueueSelector(Selector):
    """A selector on the BSDs' and macOS's kqueue(2)."""

    BACKEND = "kqueue"

    def fileno(self) -> int:
        """The kqueue's fd."""
        return self._pool.fileno()


class PollSelector(Selector):
    """A selector on POSIX poll(2)."""

    BACKEND = "poll"


class WSAPollSelector(Selector):
    """A selector on Windows's WSAPoll -- sockets only, no 512-socket ceiling."""

    BACKEND = "wsapoll"


class UringSelector(Selector):
    """A selector on Linux's io_uring (opt-in): one-shot polls, re-armed to stay level-triggered."""

    BACKEND = "uring"

    def fileno(self) -> int:
        """The ring's fd."""
        return self._pool.fileno()


_BY_BACKEND = {
    cls.BACKEND: cls for cls in (EpollSelector, KqueueSelector, PollSelector, WSAPollSelector, UringSelector)
}


def selector_classes() -> list:
    """The backend-pinned selector classes that can run here, best first."""
    return [_BY_BACKEND[name] for name in backends() if name in _BY_BACKEND]


def new_selector(backend: str | None = None, capacity: int | None = None) -> Selector:
    """A selector on the named backend (``None``: poorio's default), holding ``capacity`` fds.

    Raises:
        BackendUnavailableError: the backend is unknown, cannot run here, or
            has no selector class.
    """
    if backend is None:
        return Selector(capacity)
    cls = _BY_BACKEND.get(backend)
    if cls is None:
        backend_module(backend)  # an unknown or unusable name: its own clear error
        raise BackendUnavailableError(f"poorio has no selector class for the {backend!r} backend yet")
    return cls(capacity)
