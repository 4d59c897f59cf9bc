"""The ``EventSet``: LuaEvents' event container, its kinds given as one-letter strings (see the package docstring)."""

from __future__ import annotations

import math
from collections import deque
from itertools import count
from time import monotonic

from .kinds import (
    _KINDS,
    _READ,
    _SIGNAL,
    _TIMER,
    _VIRTUAL,
    _WRITE,
    KINDS,
    READ,
    READ_PERSISTENT,
    REASON_READ,
    REASON_SIGNAL,
    REASON_TIMEOUT,
    REASON_TRIGGERED,
    REASON_WRITE,
    SIGNAL,
    SIGNAL_PERSISTENT,
    TIMER,
    TIMER_PERIODIC,
    VIRTUAL,
    VIRTUAL_PERSISTENT,
    WRITE,
    WRITE_PERSISTENT,
    Event,
    EventStatistics,
    _seconds,
)
from .kinds import __all__ as _eventtypes_all
from .fdinterest import FdInterest
from .timers import TimerHeap
from ..errors import AlreadyRegisteredError, ClosedResourceError, NotRegisteredError
from ..platform import DEFAULT_CAPACITY, ERROR, HANGUP, READABLE, WRITABLE, new_pool
from ..platform._libc import fileno as _fileno
from ..platform.wakeup import Waker

__all__ = ["EventSet", "DEFAULT_CAPACITY", *_eventtypes_all]

# An error or hang-up wakes both directions: the owner retries its syscall
# and meets the real error (or end of file) there.
_RMASK = READABLE | ERROR | HANGUP
_WMASK = WRITABLE | ERROR | HANGUP

_UNSET = object()


class EventSet:
    """A container of events and a destructive iterator over the ones that fired.

    ``capacity`` bounds how many fds it watches at once (its pool is fixed
    size); ``backend`` picks the pool's mechanism (default: the best here,
    or ``POORIO_BACKEND``).  It owns one wake-up channel (two fds, not
    counted against ``capacity``) so other threads and signal handlers can
    interrupt a blocking iteration.

    ``lazy=True`` keeps an fd registered after its one-shot ``'r'``/``'w'``
    event is delivered, betting it is waited on again soon (a fiber's next
    read): that saves two syscalls per wait.  The fd is dropped when it turns
    ready with nobody waiting, when room is needed, and by ``forget_fd``,
    ``clear`` and ``close`` -- so with ``lazy=True`` every fd must go through
    ``forget_fd`` before it is closed: epoll and kqueue forget a closed fd by
    themselves, and a new file given the same number would never be watched.
    ``add(..., lazy=True)`` makes the same bet for one event only, for owners
    that keep that promise (poorio's streams); ``defer_close`` is how such an
    owner's finalizer closes an fd that may still be registered.

    One thread drives a set (adds, deletes, iterates).  From any thread you
    may call ``wakeup``, ``once``, ``trigger`` and ``stop``.  Do not run two
    iterations of one set at the same time; abandoning one and starting
    another is fine.

    Raises:
        ValueError: ``capacity`` is not a positive int.
        BackendUnavailableError: ``backend`` does not exist or cannot run here.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, backend: str | None = None, *, lazy: bool = False) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, not {capacity!r}")
        self.capacity = capacity
        self._lazy = bool(lazy)
        self._closed = False
        pool = new_pool(capacity + 1, backend)  # + the wake-up channel
        try:
            waker = Waker()
            try:
                pool.add(waker.fileno(), READABLE)
            except BaseException:
                waker.close()
                raise
        except BaseException:
            pool.close()
            raise
        self._pool = pool
        self._waker = waker
        self._wake_fd = waker.fileno()
        self._events: dict = {}  # id -> Event, every live event
        self._fds = FdInterest(pool, capacity, self._wake_fd)
        self._readers = self._fds.readers  # fd -> its 'r'/'R' event
        self._writers = self._fds.writers  # fd -> its 'w'/'W' event
        self._signals: dict = {}  # signal number -> its 's'/'S' event
        self._timers = TimerHeap()
        self._ids = count(1)
        self._batch: deque = deque()  # collected, not yet delivered (may hold deleted events)
        self._pending: deque = deque()  # triggered since the last collection (any thread appends)
        self._arrived: deque = deque()  # signal numbers caught since the last collection
        self._closing: deque = deque()  # (fd, close) handed over by defer_close (any thread appends)
        self._waiting = False  # set just before the pool wait: others must wake us
        self._epoch = 0  # stop() bumps it; an iteration ends when it changes

    # -- adding and changing events --------------------------------------------

    def add(self, kind: str, source=None, context=None, timeout: float | None = None, *, lazy: bool = False) -> int:
        """Add an event; return its id (an int never reused within this set).

        ``source`` depends on ``kind`` (see the module docstring); ``context``
        is handed back on delivery; ``timeout`` (seconds, not for timers)
        delivers the event with reason ``timeout`` if it has not fired by then.
        ``lazy`` (one-shot ``'r'``/``'w'``): once delivered, leave the fd
        registered, as a ``lazy=True`` set does -- the caller promises
        ``forget_fd`` (or ``defer_close``) before the fd is closed.

        Raises:
            ValueError: unknown ``kind``; a bad fd, signal, interval or timeout;
                a signal event outside the main thread.
            TypeError: ``source`` or ``timeout`` has the wrong type.
            AlreadyRegisteredError: the fd already has a read (or write) event
                in this set, or the signal already has an event.
            PoolFullError: the set already watches ``capacity`` fds.
            ClosedResourceError: the set is closed.
            OSError: the kernel refused the fd (e.g. ``EBADF``), unmodified.
        """
        try:
            code, persist = _KINDS[kind]
        except (KeyError, TypeError):
            raise ValueError(f"unknown event kind {kind!r}; expected one of {', '.join(map(repr, KINDS))}") from None
        if self._closed:
            raise ClosedResourceError("the event set is closed")
        if timeout is not None:
            if code == _TIMER:
                raise ValueError(f"a timer takes no timeout (got {timeout!r}): its source is when it fires")
            timeout = _seconds(timeout, "timeout")
        ev = Event(next(self._ids), kind, source, context, code, persist)
        if code == _READ or code == _WRITE:
            self._watch(ev, code)
            ev._park = lazy or self._lazy
        elif code == _TIMER:
            interval = _seconds(source, "a timer's interval")
            if persist and interval <= 0.0:
                raise ValueError(f"a periodic timer needs an interval > 0, not {source!r}")
            ev._interval = interval
            self._timers.push(ev, monotonic() + interval)
        elif code == _SIGNAL:
            self._listen(ev)
        self._events[ev.id] = ev
        if timeout is not None:
            ev._interval = timeout
            self._timers.push(ev, monotonic() + timeout)
        if code == _VIRTUAL and source:
            ev._why = REASON_TRIGGERED
            self._pending.append(ev)
        return ev.id

    def _watch(self, ev: Event, code: int) -> None:
        source = ev.source
        if type(source) is int and source >= 0:
            fd = source
        else:
            try:
                fd = _fileno(source)
            except ValueError:
                raise ValueError(f"an {ev.kind!r} event's source must be an fd >= 0 or have fileno(), not {source!r}") from None
        self._fds.watch(ev, fd, READABLE if code == _READ else WRITABLE)
        ev._fd = fd

    def _listen(self, ev: Event) -> None:
        from . import signals as _signals  # signals are rare: keep them off the import path

        signum = _signals.check_signal(ev.source)
        taken = self._signals.get(signum)
        if taken is not None:
            raise AlreadyRegisteredError(f"signal {signum} already has an event in this set (id {taken.id}, kind {taken.kind!r})")
        _signals.listen(signum, self)
        self._signals[signum] = ev
        ev._fd = signum

    def set(self, eid: int, *, context=_UNSET, timeout=_UNSET) -> int:
        """Change an event's context and/or timeout; an omitted one stays.

        A new ``timeout`` counts from now; ``timeout=None`` removes it.
        Returns ``eid``.

        Raises:
            NotRegisteredError: no live event has id ``eid``.
            ValueError, TypeError: a bad timeout, or a timeout for a timer.
        """
        ev = self._get(eid)
        if timeout is not _UNSET:
            if ev._type == _TIMER:
                if timeout is not None:
                    raise ValueError(f"a timer takes no timeout (got {timeout!r}): its source is when it fires")
            elif timeout is None:
                ev._interval = None
                ev.deadline = None
                self._timers.cancel(ev)
            else:
                timeout = _seconds(timeout, "timeout")
                ev._interval = timeout
                self._timers.rearm(ev, monotonic() + timeout)
        if context is not _UNSET:
            ev.context = context
        return eid

    def trigger(self, eid: int) -> int:
        """Trigger a virtual event; it is delivered by the next collection.

        Triggering an event already triggered but not yet delivered does
        nothing: it is delivered once.  Thread-safe: from another thread it
        also wakes a blocking iteration.  Returns ``eid``.

        Raises:
            NotRegisteredError: no live event has id ``eid``.
            ValueError: the event is not a virtual one.
        """
        ev = self._get(eid)
        if ev._type != _VIRTUAL:
            raise ValueError(f"event {eid} is a {ev.kind!r} event; only virtual events ('v', 'V') can be triggered")
        if ev._why is None:
            ev._why = REASON_TRIGGERED
            self._pending.append(ev)
            if self._waiting:
                self._waker.wake()
        return eid

    def once(self, context=None) -> int:
        """Add an immediate one-shot event (a triggered ``'v'``); return its id.

        Thread-safe: from another thread it also wakes a blocking iteration.

        Raises:
            ClosedResourceError: the set is closed.
        """
        if self._closed:
            raise ClosedResourceError("the event set is closed")
        ev = Event(next(self._ids), VIRTUAL, None, context, _VIRTUAL, False)
        ev._why = REASON_TRIGGERED
        self._events[ev.id] = ev
        # Discussion: append before reading _waiting, while the loop sets
        # _waiting before it looks at the queue -- so either it sees our event
        # or we see it waiting and wake it.
        self._pending.append(ev)
        if self._waiting:
            self._waker.wake()
        return ev.id

    def _get(self, eid) -> Event:
        ev = self._events.get(eid)
        if ev is None:
            if isinstance(eid, bool) or not isinstance(eid, int):
                raise TypeError(f"an event id is an int, not {eid!r}")
            raise NotRegisteredError(f"no event with id {eid} in this set")
        return ev

    # -- removing events ---------------------------------------------------------

    def delete(self, eid: int) -> int | None:
        """Delete an event (also a pending one); return ``eid``, or None if it is already gone.

        Raises:
            TypeError: ``eid`` is not an int.
        """
        ev = self._events.get(eid)
        if ev is None:
            if isinstance(eid, bool) or not isinstance(eid, int):
                raise TypeError(f"an event id is an int, not {eid!r}")
            return None
        self._discard(ev)
        return eid

    def _discard(self, ev: Event, park: bool = False) -> None:
        """Forget ``ev`` everywhere: id table, fd tables, pool (unless ``park``), heap, signal routing."""
        del self._events[ev.id]
        ev._live = False
        ev._why = None
        if ev._entry is not None:
            self._timers.cancel(ev)
        code = ev._type
        if code == _READ:
            del self._readers[ev._fd]
            if not park:
                self._fds.unwatch(ev._fd)
        elif code == _WRITE:
            del self._writers[ev._fd]
            if not park:
                self._fds.unwatch(ev._fd)
        elif code == _SIGNAL:
            from . import signals as _signals

            del self._signals[ev._fd]
            _signals.unlisten(ev._fd, self)

    def forget_fd(self, fd) -> list:
        """Delete every event on ``fd`` and drop it from the pool now; return the deleted events.

        Call it before closing an fd that may still be in the set, so that
        no registration outlives the file (and the owners of the returned
        events can be told).  Returns ``[]`` when ``fd`` had no events.

        Raises:
            ValueError: ``fd`` is negative or not a file object.
        """
        fd = _fileno(fd)
        removed = []
        for table in (self._readers, self._writers):
            ev = table.get(fd)
            if ev is not None:
                self._discard(ev)
                removed.append(ev)
        if fd in self._fds.registered:  # parked by a lazy set
            self._fds.unwatch(fd)
        return removed

    def defer_close(self, fd: int, close) -> bool:
        """Have the set call ``close()`` soon, once ``fd`` is no longer registered; False if it is closed.

        For finalizers of objects whose fd may be left registered by a
        ``lazy`` event: they may run in any thread, or in the middle of the
        set's own bookkeeping, so they must not touch the pool.  The fd stays
        open until the set has dropped it, so its number cannot be reused
        while the pool still watches it.  Thread-safe.
        """
        if self._closed:
            return False
        self._closing.append((fd, close))
        if self._closed:  # close() ran meanwhile and may have missed it
            self._run_closes()
        elif self._waiting:
            self._waker.wake()
        return True

    def _run_closes(self) -> None:
        closing = self._closing
        while closing:
            try:
                fd, close = closing.popleft()
            except IndexError:  # another thread took the last one
                return
            try:
                if not self._closed and fd not in self._readers and fd not in self._writers:
                    self._fds.unwatch(fd)  # a parked registration, if any
            finally:
                close()

    def clear(self) -> None:
        """Delete every event, pending ones too.  Safe inside the loop.

        A running blocking iteration carries on with events added later; a
        running non-blocking one ends (a new collection is needed first).
        """
        for ev in list(self._events.values()):
            self._discard(ev)
        self._fds.evict_parked()
        self._batch.clear()
        self._timers.clear()

    def stop(self) -> None:
        """End the running iteration at its next step; pending events stay for the next one.

        Thread-safe: from another thread it also wakes a blocking iteration.
        """
        self._epoch += 1
        if self._waiting:
            self._waker.wake()

    def wakeup(self) -> None:
        """Make a blocking wait in another thread return now.  Thread-safe; a no-op once closed."""
        self._waker.wake()

    def close(self) -> None:
        """Delete every event (restoring signal handlers), close the pool and the wake-up channel.

        Idempotent.  The fds of ``'r'``/``'w'`` events are not closed.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self.clear()
        finally:
            self._pool.close()
            self._waker.close()
            self._run_closes()

    # -- iteration -----------------------------------------------------------------

    def __call__(self, block=None):
        """An iterator over the events that fire, destructive as in LuaEvents.

        ``block``: ``True`` -- block, and keep collecting until ``stop()`` or
        until the set is empty; ``False`` -- one collection that never blocks;
        a number ``n`` -- one collection that blocks up to ``n`` seconds
        (``math.inf``: as long as it takes); ``None`` (default) -- keep
        collecting, blocking, while a timer or timeout is pending, then one
        last collection that does not block.  A collection never blocks
        while an event waits to be delivered, and never past the next timer.

        One-shot events are deleted as they are yielded.  Any method may be
        called from the loop body; events triggered there are delivered by
        the next collection, never the one in progress.

        Raises:
            ValueError, TypeError: a bad ``block``.
            ClosedResourceError: the set is closed.
        """
        if block is not True and block is not False and block is not None:
            if not isinstance(block, (int, float)):
                raise TypeError(f"block must be True, False, None or seconds, not {block!r}")
            if not block >= 0:  # also NaN
                raise ValueError(f"block must be True, False, None or seconds >= 0, not {block!r}")
        if self._closed:
            raise ClosedResourceError("the event set is closed")
        return self._iterate(block)

    def _iterate(self, block):
        epoch = self._epoch
        batch = self._batch
        popleft = batch.popleft
        events = self._events
        timers = self._timers
        collected = False  # one-collection modes end after their collection
        final = False  # block=None: the last, non-blocking collection is done
        delivered = False
        while True:
            while batch:
                if self._epoch != epoch:
                    return
                ev = popleft()
                why = ev._why
                if why is None or not ev._live:
                    continue  # deleted after it was collected
                ev._why = None
                ev.reason = why
                if not ev._persist:
                    self._discard(ev, ev._park)
                elif ev._interval is not None and ev._type != _TIMER:
                    timers.rearm(ev, monotonic() + ev._interval)  # a persistent event's timeout re-arms when it fires
                delivered = True
                yield ev
            if self._epoch != epoch or not events or self._closed:
                return
            if block is True:
                wait = None
            elif block is None:
                if len(timers):
                    wait = None  # bounded by the next deadline
                elif final:
                    return
                else:
                    wait = 0.0
                    final = True
            elif collected:
                return
            elif delivered or block == 0:
                wait = 0.0
            else:
                wait = None if block == math.inf else block
            collected = True
            self._collect(wait)

    def _collect(self, wait) -> None:
        """Wait for the pool (up to ``wait`` seconds, None: until the next deadline) and queue what fired."""
        batch = self._batch
        pending = self._pending
        timers = self._timers
        if self._closing:
            self._run_closes()
        self._waiting = True  # before looking at the queues -- see once()
        if pending or self._arrived:
            wait = 0.0
        elif wait != 0.0 and timers.heap:
            first = timers.first()
            if first is not None:
                delay = first - monotonic()
                if wait is None or delay < wait:
                    wait = delay if delay > 0.0 else 0.0
        try:
            ready = self._pool.cycle(wait)
        finally:
            self._waiting = False

        if pending:
            for _ in range(len(pending)):
                ev = pending.popleft()
                if ev._live:
                    batch.append(ev)  # _why was set when it was triggered

        if ready:
            readers = self._readers
            writers = self._writers
            for fd, flags in ready:
                reader = readers.get(fd) if flags & _RMASK else None
                writer = writers.get(fd) if flags & _WMASK else None
                if reader is not None and reader._why is None:
                    reader._why = REASON_READ
                    batch.append(reader)
                if writer is not None and writer._why is None:
                    writer._why = REASON_WRITE
                    batch.append(writer)
                if reader is None and writer is None:
                    if fd == self._wake_fd:
                        self._waker.drain()
                    else:  # ready for nobody: a lazy set's parked fd
                        self._fds.unwatch(fd)
                elif (flags & READABLE and reader is None) or (flags & WRITABLE and writer is None):
                    self._fds.unwatch(fd)  # parked interest in the other direction

        arrived = self._arrived
        if arrived:
            signals = self._signals
            for _ in range(len(arrived)):
                ev = signals.get(arrived.popleft())
                if ev is not None and ev._why is None:
                    ev._why = REASON_SIGNAL
                    batch.append(ev)

        if timers.heap:
            now = monotonic()
            for deadline, _, ev in timers.pop_due(now):
                if ev._persist and ev._type == _TIMER:
                    # No drift: the next deadline counts from the last one, not
                    # from now; periods already past are reported, not replayed.
                    period = ev._interval
                    after = deadline + period
                    missed = 0
                    if after <= now:
                        missed = int((now - deadline) // period)
                        after = deadline + (missed + 1) * period
                    timers.push(ev, after)
                    if ev._why is None:
                        ev.missed = missed
                        ev._why = REASON_TIMEOUT
                        batch.append(ev)
                    else:  # its last firing is still undelivered (a stopped loop)
                        ev.missed += missed + 1
                elif ev._why is None:
                    ev._why = REASON_TIMEOUT
                    batch.append(ev)

    def _signal_arrived(self, signum: int) -> None:
        """Called by poorio's signal handler, in the main thread, for a signal this set listens to."""
        self._arrived.append(signum)
        self._waker.wake()

    # -- introspection ---------------------------------------------------------

    def __len__(self) -> int:
        return len(self._events)

    def __contains__(self, eid) -> bool:
        return eid in self._events

    def __bool__(self) -> bool:
        return True  # a set with no events is still a set (len() would say False)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def backend(self) -> str:
        return self._pool.backend

    def statistics(self) -> EventStatistics:
        """A frozen snapshot: backend, capacity, events held, fds watched, timers armed, events queued, signals."""
        pending = sum(1 for ev in self._batch if ev._live and ev._why is not None)
        pending += sum(1 for ev in tuple(self._pending) if ev._live)
        fds = len(self._fds)
        return EventStatistics(
            self._pool.backend,
            self.capacity,
            len(self._events),
            fds,
            len(self._timers),
            pending,
            len(self._signals),
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._closed:
            return f"<EventSet {self._pool.backend} closed>"
        stats = self.statistics()
        return (
            f"<EventSet {stats.backend} events={stats.events} fds={stats.fds}/{self.capacity} "
            f"timers={stats.timers} pending={stats.pending} signals={stats.signals}>"
        )
