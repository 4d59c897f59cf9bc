"""The fiber scheduler: a ready queue of fibers, traps dispatched through a table, and ``run()``.

The scheduler is the *dispatch* layer over the event layer.  It steps each
ready fiber's coroutine until it yields a trap, looks the trap's class up in
``_handlers`` and either puts the fiber back on the ready queue or parks it
on a ``Suspension``.  Timers and fd readiness are events in one
``EventSet``; the parked fiber's suspension is the event's context, so a
fired event is dispatched with one method call.  Trap handlers never raise
into the loop: whatever goes wrong is recorded as the outcome the fiber is
resumed with.

The loop, in order: run every fiber that was ready when the batch started;
poll the event set without blocking at least every ``_POLL_EVERY`` steps so
busy fibers cannot starve IO; when nothing is ready, block in the event set
until an event, a timer or another thread wakes it.  If nothing is ready,
pending or registered and no other thread is expected to wake anything,
the fibers are deadlocked: ``run()`` raises ``DeadlockError`` naming them.

One scheduler runs per thread (``run`` installs it; nothing else is global).
"""

from __future__ import annotations

import math
import time
import types
from collections import deque

from ..errors import Cancelled, ClosedResourceError, DeadlockError
from ..events import READ, TIMER, WRITE, EventSet
from .fiber import Fiber, Suspension, _Waker
from ..platform import DEFAULT_CAPACITY, READABLE, WRITABLE
from .traps import Checkpoint, Sleep, Suspend, YieldForIo, _fd, _thread_state, current_scheduler

__all__ = [
    "Scheduler", "SchedulerStatistics", "FiberInfo", "run", "spawn", "current", "notify_closing", "stats",
    "dump", "fibers",
]  # fmt: skip

_monotonic = time.monotonic
_CoroutineType = types.CoroutineType
_IO_KINDS = {READABLE: READ, WRITABLE: WRITE}
_POLL_EVERY = 64  # fiber steps between non-blocking polls while fibers stay ready


class _Record:
    """Base of the frozen snapshot records: fields given by keyword, read-only after."""

    __slots__ = ()

    def __init__(self, **fields) -> None:
        for name in self.__slots__:
            object.__setattr__(self, name, fields[name])

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __repr__(self) -> str:
        body = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({body})"


class SchedulerStatistics(_Record):
    """A frozen snapshot of a scheduler: its backend, its fibers and what they wait on.

    ``capacity`` and ``fds``: how many fds its pool can watch and watches
    now; ``timers``: sleeps and deadlines armed; ``events``: events held;
    ``switches``: fiber steps so far; ``polls``: pool waits so far;
    ``delivered``: events delivered so far (so rates are differences of two
    snapshots).
    """

    __slots__ = (
        "backend", "capacity", "fds", "fibers", "ready", "io_waits", "sleeping", "timers", "events",
        "switches", "polls", "delivered",
    )  # fmt: skip


class FiberInfo(_Record):
    """A frozen snapshot of one fiber: ``id``, ``name``, ``state`` and what it waits on.

    ``state`` is ``"running"``, ``"ready"`` or ``"waiting"``; ``waiting``
    describes the wait (None unless waiting); ``since`` is the
    ``time.monotonic()`` time it started waiting (None unless waiting).
    """

    __slots__ = ("id", "name", "state", "waiting", "since")


class _Call:
    """Event context that runs a function queued by another thread."""

    __slots__ = ("sched", "fn", "args")

    def __init__(self, sched, fn, args) -> None:
        self.sched = sched
        self.fn = fn
        self.args = args

    def _on_event(self, event) -> None:
        try:
            self.fn(*self.args)
        except Exception as error:
            self.sched.report(f"{self.fn!r}, called from another thread, failed", error)


class Scheduler:
    """Runs fibers on one thread, over one ``EventSet`` (and so one ``SocketIoPool``).

    ``lazy_fds=True`` leaves an fd in the pool after the fiber waiting on it
    woke, betting that it waits again soon (the next read): two syscalls
    fewer per wait.  Then every fd must go through ``notify_closing`` before
    it is closed -- poorio's IO objects do; code closing raw fds it waited
    on itself must too, or a new file reusing the number is never watched.
    """

    def __init__(self, backend: str | None = None, capacity: int = DEFAULT_CAPACITY, *, lazy_fds: bool = False) -> None:
        self._events = EventSet(capacity=capacity, backend=backend, lazy=lazy_fds)
        self._ready = deque()  # fibers to step, each with its _value or _exc set
        self._fibers = {}  # every live fiber, in spawn order (a dict as an ordered set)
        self.current = None  # the fiber being stepped
        self._switches = 0
        self._polls = 0
        self._delivered = 0
        self._next_id = 1
        self._escalate = None  # KeyboardInterrupt/SystemExit from a fiber nobody joins
        self._deadlocks = 0
        self._handlers = {
            Checkpoint: self._on_checkpoint,
            Sleep: self._on_sleep,
            YieldForIo: self._on_io,
            Suspend: self._on_suspend,
        }

    # -- the public surface ------------------------------------------------------

    def run(self, main, *args):
        """Run ``main(*args)`` as a fiber until it finishes; return its result.

        When ``main`` finishes, the fibers still running are cancelled and
        waited for.  Then ``main``'s result is returned or its exception raised.

        Raises:
            DeadlockError: every fiber was blocked with nothing left to wake it.
            RuntimeError: a scheduler already runs in this thread.
            BaseException: whatever ``main`` raised.
        """
        if _thread_state.scheduler is not None:
            raise RuntimeError("a poorio scheduler is already running in this thread")
        _thread_state.scheduler = self
        try:
            fiber = self.spawn(main, *args)
            fiber._observed = True  # run() hands its outcome to the caller
            self._loop(fiber)
            for other in list(self._fibers):
                other.cancel()
            self._loop(None)
            return fiber.result()
        finally:
            for other in list(self._fibers):  # only after an error escaped the loop
                self._abandon(other, Cancelled())
            self.current = None
            _thread_state.scheduler = None

    def spawn(self, fn, *args, name: str | None = None, parent=None, group=None) -> Fiber:
        """Start ``fn(*args)`` as a new fiber, scheduled to run soon.

        Raises:
            TypeError: ``fn(*args)`` did not return a coroutine.
        """
        coro = fn(*args)
        if coro.__class__ is not _CoroutineType and not hasattr(coro, "send"):
            raise TypeError(f"spawn() needs an async function; {fn!r} returned {coro!r}")
        fiber = Fiber(self, coro, fn, name, self._next_id, parent, group)
        self._next_id += 1
        self._fibers[fiber] = None
        self._ready.append(fiber)
        return fiber

    def notify_closing(self, obj) -> None:
        """``obj`` (an fd or object with ``fileno()``) is about to be closed.

        Every fiber waiting on it wakes with ``ClosedResourceError`` and its
        registration is dropped from the pool now, before the fd number can
        be reused.
        """
        fd = _fd(obj)
        for event in self._events.forget_fd(fd):
            context = event.context
            susp = context.susp if isinstance(context, _Waker) else context
            if isinstance(susp, Suspension):
                if susp._eid == event.id:
                    susp._eid = None
                susp.fail(ClosedResourceError(f"fd {fd} was closed while a fiber waited on it"))

    def call_threadsafe(self, fn, *args) -> None:
        """Run ``fn(*args)`` in the scheduler's thread soon; callable from any thread.

        Raises:
            ClosedResourceError: the scheduler has finished.
        """
        self._events.once(_Call(self, fn, args))  # thread-safe, and wakes a blocked loop

    def add_timer(self, context, delay: float) -> int:
        """Call ``context._on_event(event)`` in ``delay`` seconds; returns the timer's id."""
        return self._events.add(TIMER, delay, context)

    def delete_timer(self, eid: int) -> None:
        """Forget a timer from ``add_timer`` (fine if it already fired)."""
        self._events.delete(eid)

    def statistics(self) -> SchedulerStatistics:
        """Fibers alive, ready, waiting on IO and sleeping; timers armed; events held; switches so far."""
        io_waits = sleeping = 0
        for fiber in self._fibers:
            if fiber._susp is not None:
                kind = type(fiber._waiting)
                io_waits += kind is YieldForIo
                sleeping += kind is Sleep
        events = self._events.statistics()
        return SchedulerStatistics(
            backend=events.backend,
            capacity=events.capacity,
            fds=events.fds,
            fibers=len(self._fibers),
            ready=len(self._ready),
            io_waits=io_waits,
            sleeping=sleeping,
            timers=events.timers,  # sleeps and cancel-scope deadlines
            events=events.events,
            switches=self._switches,
            polls=self._polls,
            delivered=self._delivered,
        )

    def fibers(self) -> tuple:
        """A ``FiberInfo`` for every live fiber, in spawn order."""
        current = self.current
        table = []
        for f in self._fibers:
            if f._susp is not None:
                state, waiting, since = "waiting", repr(f._waiting), f._since
            else:
                state, waiting, since = ("running" if f is current else "ready"), None, None
            table.append(FiberInfo(id=f._id, name=f.name, state=state, waiting=waiting, since=since))
        return tuple(table)

    def dump(self) -> str:
        """One line per live fiber: its number, name and what it is doing or waiting on."""
        return "\n".join(f"#{f._id} {f.name}: {f._state()}" for f in self._fibers)

    def report(self, message: str, error: BaseException | None = None) -> None:
        """Log ``message`` on the ``poorio`` logger, with ``error``'s traceback if given."""
        import logging

        exc_info = (type(error), error, error.__traceback__) if error is not None else None
        logging.getLogger("poorio").error(message, exc_info=exc_info)

    def close(self) -> None:
        """Release the event set and its pool."""
        self._events.close()

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- the loop ------------------------------------------------------------------

    def _loop(self, main) -> None:
        """Step fibers until ``main`` is done (``None``: until no fiber is left)."""
        ready = self._ready
        events = self._events
        steps = 0
        while not main._done if main is not None else self._fibers:
            if ready:
                steps += self._run_ready()
                if self._escalate is not None:
                    raise self._escalate
                if not ready:
                    steps = 0  # and check whether the loop is over before blocking
                elif steps >= _POLL_EVERY and len(events):
                    steps = 0
                    self._poll(False)
                continue
            if len(events):
                self._poll(math.inf)  # one collection, as long as it takes (bounded by timers)
            else:
                self._deadlock(main)

    def _run_ready(self) -> int:
        """Step every fiber that is ready now, once each; return how many."""
        ready = self._ready
        popleft = ready.popleft
        handlers = self._handlers
        count = len(ready)
        self._switches += count
        for _ in range(count):
            fiber = popleft()
            self.current = fiber
            try:
                exc = fiber._exc
                if exc is None:
                    trap = fiber._coro.send(fiber._value)
                else:
                    fiber._exc = None
                    trap = fiber._coro.throw(exc)
            except StopIteration as stop:
                self._finish(fiber, stop.value, None)
            except BaseException as error:
                self._finish(fiber, None, error)
            else:
                handler = handlers.get(trap.__class__)
                if handler is None:
                    self._on_foreign(fiber, trap)
                else:
                    handler(fiber, trap)
        self.current = None
        return count

    def _poll(self, block) -> None:
        self._polls += 1
        delivered = 0
        for event in self._events(block):
            delivered += 1
            event.context._on_event(event)
        self._delivered += delivered

    # -- trap handlers: each records an outcome, none raises ---------------------

    def _park(self, fiber: Fiber, trap, abortable: bool = True):
        """A Suspension for ``fiber``, or None when it is cancelled and must not park."""
        if abortable and fiber._scope._effective:
            fiber._exc = Cancelled()
            self._ready.append(fiber)
            return None
        susp = Suspension(self, fiber, abortable)
        fiber._susp = susp
        fiber._waiting = trap
        fiber._since = _monotonic()
        return susp

    def _on_checkpoint(self, fiber: Fiber, trap: Checkpoint) -> None:
        if fiber._scope._effective:
            fiber._exc = Cancelled()
        self._ready.append(fiber)

    def _on_sleep(self, fiber: Fiber, trap: Sleep) -> None:
        susp = self._park(fiber, trap)
        if susp is not None:
            try:
                delay = trap.deadline - _monotonic()
                if delay > 0:
                    if delay != math.inf:  # sleeping forever needs no timer
                        susp._eid = self._events.add(TIMER, delay, susp)
                else:
                    susp.complete()
            except Exception as error:  # a deadline that is not a number
                susp.fail(error)

    def _on_io(self, fiber: Fiber, trap: YieldForIo) -> None:
        susp = self._park(fiber, trap)
        if susp is not None:
            try:
                keeper = trap.keeper
                if keeper is None:
                    susp.watch(_IO_KINDS[trap.events], trap.fd)
                else:  # an IO object's fd: it may stay registered (see FdKeeper)
                    keeper.events = self._events
                    susp.watch(_IO_KINDS[trap.events], trap.fd, lazy=True)
            except Exception as error:  # busy, pool full, EBADF...: the fiber sees it
                susp.fail(error)

    def _on_suspend(self, fiber: Fiber, trap: Suspend) -> None:
        susp = self._park(fiber, trap, trap.abortable)
        if susp is not None:
            try:
                trap.setup(susp)
            except BaseException as error:
                if not susp.fail(error):
                    self.report(f"suspension setup failed after waking {fiber!r}", error)

    def _on_foreign(self, fiber: Fiber, trap) -> None:
        fiber._exc = TypeError(
            f"a poorio fiber awaited {trap!r}, which is not a poorio trap "
            "(an asyncio or trio awaitable?)"
        )
        self._ready.append(fiber)

    # -- endings -----------------------------------------------------------------

    def _finish(self, fiber: Fiber, result, error) -> None:
        fiber._done = True
        fiber._value = result
        fiber._exc = error
        fiber._coro = fiber._waiting = None  # let go of its frames and waits
        del self._fibers[fiber]
        if fiber._parent is not None:
            fiber._detach()
        observed = fiber._observed
        joiners = fiber._joiners
        if joiners is not None:
            fiber._joiners = None
            for susp in joiners:
                if susp.complete():
                    observed = True
        group = fiber._group
        if group is not None:
            group._child_done(fiber)
            observed = True
        if error is not None and not observed and not isinstance(error, Cancelled):
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                self._escalate = error
            else:
                self.report(f"unhandled error in fiber {fiber!r}, which nobody joined", error)

    def _abandon(self, fiber: Fiber, error: BaseException) -> None:
        """End a fiber that can never run again: close its coroutine, drop its registrations."""
        susp = fiber._susp
        if susp is not None:
            susp.done = True
            fiber._susp = None
            susp._cleanup()
        try:
            fiber._coro.close()
        except BaseException as close_error:  # e.g. it awaited in a finally block
            self.report(f"closing abandoned fiber {fiber!r} failed", close_error)
        self._finish(fiber, None, error)

    def _deadlock(self, main) -> None:
        """Nothing can ever wake a fiber: tell ``main`` (and cancel the rest), or give up."""
        self._deadlocks += 1
        listing = self.dump()
        if main is None or self._deadlocks > 1:
            if main is None:
                self.report(f"fibers left blocked after the main fiber ended were abandoned:\n{listing}")
            for fiber in list(self._fibers):
                error = DeadlockError(f"deadlock; blocked fibers:\n{listing}") if fiber is main else Cancelled()
                self._abandon(fiber, error)
            return
        error = DeadlockError(
            "deadlock: no fiber is ready, no timer is pending and no fd is watched; blocked:\n" + listing
        )
        susp = main._susp
        if susp is not None:
            susp.abortable = True
            susp.fail(error)
        for fiber in list(self._fibers):
            if fiber is not main:
                fiber.cancel()


def run(main, *args, backend: str | None = None, capacity: int = DEFAULT_CAPACITY, lazy_fds: bool = False):
    """Run ``main(*args)`` in a new fiber on a new scheduler; return its result.

    ``backend`` names the readiness backend (default: the best one here);
    ``capacity`` is how many fds can be watched at once; ``lazy_fds`` as
    for ``Scheduler``.

    Raises:
        DeadlockError: every fiber was blocked with nothing left to wake it.
        RuntimeError: called from inside a running poorio scheduler.
        BaseException: whatever ``main`` raised.
    """
    if _thread_state.scheduler is not None:
        raise RuntimeError("poorio.run() cannot be called from inside a running scheduler")
    with Scheduler(backend, capacity, lazy_fds=lazy_fds) as scheduler:
        return scheduler.run(main, *args)


def spawn(fn, *args, name: str | None = None) -> Fiber:
    """Start ``fn(*args)`` as a new fiber of the current scheduler; returns the ``Fiber``.

    Raises:
        RuntimeError: no scheduler runs in this thread.
        TypeError: ``fn(*args)`` did not return a coroutine.
    """
    return current_scheduler().spawn(fn, *args, name=name)


def current() -> Fiber:
    """The fiber that is running now.

    Raises:
        RuntimeError: not called from inside a poorio fiber.
    """
    fiber = current_scheduler().current
    if fiber is None:
        raise RuntimeError("not inside a poorio fiber")
    return fiber


def notify_closing(obj) -> None:
    """Wake every fiber waiting on ``obj``'s fd with ``ClosedResourceError``; call before closing it.

    Raises:
        RuntimeError: no scheduler runs in this thread.
    """
    current_scheduler().notify_closing(obj)


def stats() -> SchedulerStatistics:
    """Statistics of the current scheduler (see ``SchedulerStatistics``)."""
    return current_scheduler().statistics()


def dump() -> str:
    """Every live fiber of the current scheduler and what it is doing or waiting on."""
    return current_scheduler().dump()


def fibers() -> tuple:
    """A ``FiberInfo`` snapshot of every live fiber of the current scheduler."""
    return current_scheduler().fibers()
