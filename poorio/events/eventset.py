"""The ``EventSet``: LuaEvents' event container on a ``Notifier``, its kinds given as one-letter strings.

The package docstring (``poorio.events``) describes the kinds and the
iteration.  Underneath, each ``EventRecord`` is the context the set hands
its ``Notifier``: an fd event waits there for its direction, a timer is the
notifier's timer, a triggered virtual event is a post, a signal event a
watched signal, and an event's timeout is one more timer reporting a small
``_Timeout`` wrapper.  What the notifier reports becomes a batch the
iteration delivers one event at a time, so ``stop()`` can leave the rest
for the next iteration.
"""

from __future__ import annotations

import math
from collections import deque
from itertools import count
from time import monotonic

from ..errors import AlreadyRegisteredError, ClosedResourceError, NotRegisteredError
from ..platform import READABLE, WRITABLE, fileno
from .kinds import (
    _KINDS,
    _READ,
    _SIGNAL,
    _TIMER,
    _VIRTUAL,
    _WRITE,
    KINDS,
    REASON_READ,
    REASON_SIGNAL,
    REASON_TIMEOUT,
    REASON_TRIGGERED,
    REASON_WRITE,
    VIRTUAL,
    EventRecord,
    EventStatistics,
    _seconds,
)
from .notifier import KeptFd, Notifier

__all__ = ["EventSet"]

_UNSET = object()
_DIRECTION = {_READ: READABLE, _WRITE: WRITABLE}
_REASON = {_READ: REASON_READ, _WRITE: REASON_WRITE, _TIMER: REASON_TIMEOUT, _SIGNAL: REASON_SIGNAL,
           _VIRTUAL: REASON_TRIGGERED}  # fmt: skip


class _Timeout:
    """The context of an event's timeout timer: reports the event with reason ``timeout``."""

    __slots__ = ("event",)

    def __init__(self, event: EventRecord) -> None:
        self.event = event


class EventSet:
    """A container of events and a destructive iterator over the ones that fired.

    ``capacity`` bounds how many fds it watches at once (its pool is fixed
    size; default: the process's fd limit, ``poorio.platform.default_capacity()``);
    ``backend`` picks the pool's mechanism (default: the best here,
    or ``POORIO_BACKEND``).  Its notifier owns one wake-up channel (two fds,
    not counted against ``capacity``) so other threads and signal handlers
    can interrupt a blocking iteration.

    ``keep=True`` keeps an fd registered after its one-shot ``'r'``/``'w'``
    event is delivered, betting it is waited on again soon: that saves two
    syscalls per wait.  A kept fd is dropped when it turns ready with nobody
    waiting, when room is needed, and by ``forget_fd``, ``clear`` and
    ``close`` -- so with ``keep=True`` every fd must go through ``forget_fd``
    before it is closed: epoll and kqueue forget a closed fd by themselves,
    and a new file given the same number would never be watched.
    ``add(..., keep=True)`` makes the same bet for one event only.

    One thread drives a set (adds, deletes, iterates).  From any thread you
    may call ``wakeup``, ``once``, ``trigger`` and ``stop``.  Do not run two
    iterations of one set at the same time; abandoning one and starting
    another is fine.

    Raises:
        ValueError: ``capacity`` is not an int from 1 to ``MAX_CAPACITY - 1``.
        BackendUnavailableError: ``backend`` does not exist or cannot run here.
    """

    def __init__(self, capacity: int | None = None, backend: str | None = None, *, keep: bool = False) -> None:
        self._notifier = Notifier(capacity, backend)
        self.capacity = self._notifier.capacity
        self._keep = bool(keep)
        self._kept = KeptFd(-1)  # the set speaks for every fd it registers: one identity for all
        self._closed = False
        self._events: dict = {}  # id -> EventRecord, every live event
        self._readers: dict = {}  # fd -> its 'r'/'R' event
        self._writers: dict = {}  # fd -> its 'w'/'W' event
        self._signals: dict = {}  # signal number -> its 's'/'S' event
        self._ids = count(1)
        self._batch: deque = deque()  # collected, not yet delivered (may hold deleted events)
        self._epoch = 0  # stop() bumps it; an iteration ends when it changes

    @property
    def notifier(self) -> Notifier:
        """The ``Notifier`` underneath (read its ``statistics()``; do not add to it)."""
        return self._notifier

    # -- adding and changing events --------------------------------------------

    def add(self, kind: str, source=None, context=None, timeout: float | None = None, *, keep: bool = False) -> int:
        """Add an event; return its id (an int never reused within this set).

        ``source`` depends on ``kind`` (see the package docstring); ``context``
        is handed back on delivery; ``timeout`` (seconds, not for timers)
        delivers the event with reason ``timeout`` if it has not fired by then.
        ``keep`` (one-shot ``'r'``/``'w'``): once delivered, leave the fd
        registered, as a ``keep=True`` set does -- the caller promises
        ``forget_fd`` before the fd is closed.

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
        ev = EventRecord(next(self._ids), kind, source, context, code, persist)
        notifier = self._notifier
        if code == _READ or code == _WRITE:
            self._watch_fd(ev, code)
            ev._keep = keep or self._keep
        elif code == _TIMER:
            interval = _seconds(source, "a timer's interval")
            if persist and interval <= 0.0:
                raise ValueError(f"a periodic timer needs an interval > 0, not {source!r}")
            ev._interval = interval
            ev.deadline = monotonic() + interval
            ev._timer = notifier.add_timer(ev.deadline, ev)
        elif code == _SIGNAL:
            self._listen(ev)
        self._events[ev.id] = ev
        if timeout is not None:
            ev._interval = timeout
            self._arm_timeout(ev, timeout)
        if code == _VIRTUAL and source:
            ev._why = REASON_TRIGGERED
            notifier.post(ev)
        return ev.id

    def _watch_fd(self, ev: EventRecord, code: int) -> None:
        source = ev.source
        try:
            fd = fileno(source)
        except ValueError:
            raise ValueError(f"an {ev.kind!r} event's source must be an fd >= 0 or have fileno(), not {source!r}") from None
        table = self._readers if code == _READ else self._writers
        taken = table.get(fd)
        if taken is not None:
            direction = "read" if code == _READ else "write"
            raise AlreadyRegisteredError(
                f"fd {fd} already has a {direction} event in this set (id {taken.id}, kind {taken.kind!r})"
            )
        self._notifier.watch(fd, _DIRECTION[code], ev, self._kept)
        table[fd] = ev
        ev._fd = fd

    def _listen(self, ev: EventRecord) -> None:
        notifier = self._notifier
        signum = ev.source
        taken = self._signals.get(signum) if isinstance(signum, int) else None
        if taken is not None:
            raise AlreadyRegisteredError(f"signal {signum} already has an event in this set (id {taken.id}, kind {taken.kind!r})")
        notifier.watch_signal(signum, ev)  # checks the number and the thread
        self._signals[int(signum)] = ev
        ev._fd = int(signum)

    def _arm_timeout(self, ev: EventRecord, seconds: float) -> None:
        if ev._timer is not None:
            self._notifier.cancel_timer(ev._timer)
        ev.deadline = monotonic() + seconds
        ev._timer = self._notifier.add_timer(ev.deadline, _Timeout(ev))

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
                if ev._timer is not None:
                    self._notifier.cancel_timer(ev._timer)
                    ev._timer = None
            else:
                timeout = _seconds(timeout, "timeout")
                ev._interval = timeout
                self._arm_timeout(ev, timeout)
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
            self._notifier.post(ev)
        return eid

    def once(self, context=None) -> int:
        """Add an immediate one-shot event (a triggered ``'v'``); return its id.

        Thread-safe: from another thread it also wakes a blocking iteration.

        Raises:
            ClosedResourceError: the set is closed.
        """
        if self._closed:
            raise ClosedResourceError("the event set is closed")
        ev = EventRecord(next(self._ids), VIRTUAL, None, context, _VIRTUAL, False)
        ev._why = REASON_TRIGGERED
        self._events[ev.id] = ev
        self._notifier.post(ev)
        return ev.id

    def get(self, eid: int) -> EventRecord | None:
        """The live event with id ``eid`` (its record, as the iterator yields it), or None."""
        return self._events.get(eid)

    def _get(self, eid) -> EventRecord:
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

    def _discard(self, ev: EventRecord, keep: bool = False) -> None:
        """Forget ``ev`` everywhere; an fd event's registration goes too, unless ``keep``."""
        del self._events[ev.id]
        ev._live = False
        ev._why = None
        notifier = self._notifier
        if ev._timer is not None:
            notifier.cancel_timer(ev._timer)
            ev._timer = None
        code = ev._type
        if code == _READ or code == _WRITE:
            fd = ev._fd
            direction = _DIRECTION[code]
            del (self._readers if code == _READ else self._writers)[fd]
            notifier.unwatch(fd, direction, ev)
            if not keep:
                notifier.release(fd, direction)
        elif code == _SIGNAL:
            del self._signals[ev._fd]
            notifier.unwatch_signal(ev._fd)

    def forget_fd(self, fd) -> list:
        """Delete every event on ``fd`` and drop it from the pool now; return the deleted events.

        Call it before closing an fd that may still be in the set, so that
        no registration outlives the file (and the owners of the returned
        events can be told).  Returns ``[]`` when ``fd`` had no events.

        Raises:
            ValueError: ``fd`` is negative or not a file object.
        """
        fd = fileno(fd)
        removed = []
        for table in (self._readers, self._writers):
            ev = table.get(fd)
            if ev is not None:
                self._discard(ev)
                removed.append(ev)
        self._notifier.forget(fd)
        return removed

    def clear(self) -> None:
        """Delete every event, pending ones too.  Safe inside the loop.

        A running blocking iteration carries on with events added later; a
        running non-blocking one ends (a new collection is needed first).
        """
        for ev in list(self._events.values()):
            self._discard(ev)
        self._notifier.release_idle()
        self._batch.clear()

    def stop(self) -> None:
        """End the running iteration at its next step; pending events stay for the next one.

        Thread-safe: from another thread it also wakes a blocking iteration.
        """
        self._epoch += 1
        self._notifier.wake()

    def wakeup(self) -> None:
        """Make a blocking wait in another thread return now.  Thread-safe; a no-op once closed."""
        self._notifier.wake()

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
            self._notifier.close()

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
        notifier = self._notifier
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
                    self._discard(ev, ev._keep)
                elif ev._interval is not None and ev._type != _TIMER:
                    self._arm_timeout(ev, ev._interval)  # a persistent event's timeout re-arms when it fires
                delivered = True
                yield ev
            if self._epoch != epoch or not events or self._closed:
                return
            if block is True:
                wait = None
            elif block is None:
                if notifier.first_deadline() is not None:
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
            self._queue(notifier.collect(wait))

    def _queue(self, fired: list) -> None:
        """Turn what the notifier reported into events queued for delivery, each once."""
        batch = self._batch
        notifier = self._notifier
        for context in fired:
            if context.__class__ is _Timeout:
                ev = context.event
                ev._timer = None
                if not ev._live or ev._why is not None:
                    continue
                ev._why = REASON_TIMEOUT  # a later firing of its fd or signal finds it queued
                batch.append(ev)
                continue
            ev = context
            if not ev._live:
                continue
            code = ev._type
            if code == _VIRTUAL:
                batch.append(ev)  # _why was set when it was triggered
                continue
            if code == _READ or code == _WRITE:
                if ev._persist:  # level-triggered: wait again at once
                    notifier.watch(ev._fd, _DIRECTION[code], ev, self._kept)
            elif code == _TIMER:
                ev._timer = None
                if ev._persist:
                    self._rearm_periodic(ev)
            if ev._why is not None:
                continue  # its last firing is still undelivered (a stopped loop)
            ev._why = _REASON[code]
            if not ev._persist and ev._timer is not None and code != _TIMER:
                notifier.cancel_timer(ev._timer)
                ev._timer = None
            batch.append(ev)

    def _rearm_periodic(self, ev: EventRecord) -> None:
        # No drift: the next deadline counts from the last one, not from now;
        # periods already past are reported, not replayed.
        period = ev._interval
        deadline = ev.deadline
        now = monotonic()
        after = deadline + period
        missed = 0
        if after <= now:
            missed = int((now - deadline) // period)
            after = deadline + (missed + 1) * period
        if ev._why is None:
            ev.missed = missed
        else:  # its last firing is still undelivered (a stopped loop)
            ev.missed += missed + 1
        ev.deadline = after
        ev._timer = self._notifier.add_timer(after, ev)

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
        return self._notifier.backend

    def room(self) -> int:
        """How many more fds the set can watch now (see ``Notifier.room``)."""
        return self._notifier.room()

    def statistics(self) -> EventStatistics:
        """A frozen snapshot: backend, capacity, events held, fds watched, timers armed, events queued, signals."""
        pending = sum(1 for ev in tuple(self._events.values()) if ev._why is not None)  # queued or posted
        stats = self._notifier.statistics()
        return EventStatistics(stats.backend, self.capacity, len(self._events), stats.fds, stats.timers, pending,
                               len(self._signals))  # fmt: skip

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._closed:
            return f"<EventSet {self._notifier.backend} closed>"
        stats = self.statistics()
        return (
            f"<EventSet {stats.backend} events={stats.events} fds={stats.fds}/{self.capacity} "
            f"timers={stats.timers} pending={stats.pending} signals={stats.signals}>"
        )
