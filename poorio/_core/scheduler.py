"""The fiber scheduler: a ready queue of fibers, traps dispatched by class, and ``run()``.

The scheduler is the *dispatch* layer over the event layer's ``Notifier``.
It steps each ready fiber's coroutine (in the fiber's own ``contextvars``
context) until it yields a trap, then parks the fiber or puts it back on the
ready queue.  A fiber waiting on an fd or a deadline is itself the context
it hands the notifier, so what the kernel reports is a fiber to resume --
one dictionary lookup from the fd to the fiber, no object made per wait.
Every other wait parks on a ``Suspension`` whose wakers call it.  Trap
handlers never raise into the loop: whatever goes wrong is recorded as the
outcome the fiber is resumed with.

The loop, in order: run the fibers the notifier's reports woke, then a
batch of at most ``_POLL_EVERY`` of the others that are ready (spawned, or
yielding with ``sleep(0)``), oldest first; while fibers stay ready, poll the
notifier without blocking every ``_POLL_EVERY`` steps, so busy fibers -- or
a burst of thousands of new ones -- delay IO and timers by one batch, never
starve them; when nothing is ready, block in the notifier until an fd, a
deadline or another thread wakes it.  If nothing is ready and
nothing could ever be reported, the fibers are deadlocked: ``run()`` raises
``DeadlockError`` naming them.

One scheduler runs per thread (``run`` installs it; nothing else is global).
While it runs it owns the thread's async-generator hooks, so an async
generator abandoned by a fiber is closed by a fiber of its own, and the ones
still alive when ``run`` ends are closed before it returns.
"""

from __future__ import annotations

import math
import sys
import types
from _thread import get_ident
from collections import deque
from contextvars import Context

from ..errors import AlreadyRegisteredError, BusyResourceError, Cancelled, ClosedResourceError, DeadlockError
from ..events.notifier import Notifier
from ..record import Record
from .fiber import Fiber, Suspension
from .traps import Checkpoint, Sleep, Suspend, YieldForIo, _thread_state, fd_of, suspend

__all__ = ["Scheduler", "SchedulerStatistics", "FiberInfo"]

_CoroutineType = types.CoroutineType
_run_in = Context.run  # unbound: one bound-method object fewer per step
_POLL_EVERY = 64  # fiber steps at most between two polls of the notifier, so busy fibers cannot starve IO
_log = None  # the "poorio" logger, loaded by the first scheduler made (see Scheduler.__init__)
_WeakSet = None  # weakref.WeakSet, likewise


class SchedulerStatistics(Record):
    """A frozen snapshot of a scheduler: its backend, its fibers and what they wait on.

    ``capacity`` and ``fds``: how many fds its pool can watch and watches
    now; ``timers``: sleeps and deadlines armed; ``events``: waits it could
    be woken by (fds, timers, expected threads, signals, operations in
    flight); ``switches``: fiber steps so far; ``polls``: notifier
    collections so far; ``delivered``: reports delivered so far (so rates
    are differences of two snapshots).
    """

    __slots__ = (
        "backend", "capacity", "fds", "fibers", "ready", "io_waits", "sleeping", "timers", "events",
        "switches", "polls", "delivered",
    )  # fmt: skip


class FiberInfo(Record):
    """A frozen snapshot of one fiber: ``id``, ``name``, ``state`` and what it waits on.

    ``state`` is ``"running"``, ``"ready"`` or ``"waiting"``; ``waiting``
    describes the wait (None unless waiting); ``since`` is the
    ``time.monotonic()`` time it started waiting (None unless waiting).
    """

    __slots__ = ("id", "name", "state", "waiting", "since")


class _Call:
    """Notifier context that runs a function queued by another thread."""

    __slots__ = ("sched", "fn", "args")

    def __init__(self, sched, fn, args) -> None:
        self.sched = sched
        self.fn = fn
        self.args = args

    def on_event(self) -> None:
        try:
            self.fn(*self.args)
        except Exception as error:
            self.sched.report(f"{self.fn!r}, called from another thread, failed", error)

    def abandon(self) -> None:
        """The scheduler closed before it could run the call: nothing to do, nobody to tell."""


class Scheduler:
    """Runs fibers on one thread, over one ``Notifier`` (and so one ``SocketIoPool``).

    ``capacity`` bounds how many fds can be watched at once -- by default
    the process's fd limit (``poorio.platform.default_capacity()``), so a
    server runs out of fds (and backs off at ``accept``) before its pool
    fills; ``backend`` picks the pool's mechanism (default: the best here).
    """

    def __init__(self, backend: str | None = None, capacity: int | None = None) -> None:
        global _log, _WeakSet
        if _log is None:
            # Loaded here, not on the error paths that use them: an import
            # needs an fd, and the error being reported may be that none is
            # left (EMFILE).  Nor at import: ``import poorio`` stays cheap.
            # Formatting a traceback imports modules of its own on first use
            # (linecache: tokenize, 3.13; the carets: ast and unicodedata,
            # 3.11+), so they come now too.
            import ast  # noqa: F401
            import logging
            import tokenize  # noqa: F401
            import unicodedata  # noqa: F401
            from weakref import WeakSet

            _log = logging.getLogger("poorio")
            _WeakSet = WeakSet
        self._notifier = Notifier(capacity, backend)
        self._ready = deque()  # fibers to step, each with its _value or _exc set
        self._woken = deque()  # fibers the notifier's last reports woke: stepped before the others
        self._fibers = {}  # every live fiber, in spawn order (a dict as an ordered set)
        self.current = None  # the fiber being stepped
        self.thread = None  # the ident of the thread running it, while it runs
        self._switches = 0
        self._polls = 0
        self._delivered = 0
        self._next_id = 1
        self._escalate = None  # KeyboardInterrupt/SystemExit from a fiber nobody joins
        self._deadlocks = 0
        self._room_waiters = []  # Suspensions of fibers in wait_for_room
        self._room_wanted = 0  # the least room one of them waits for (0: none waits)
        self._agens = None  # async generators first iterated here (a WeakSet, while running)
        self._handlers = {
            Checkpoint: self._on_checkpoint,
            Sleep: self._on_sleep,
            Suspend: self._on_suspend,
        }

    # -- the public surface ------------------------------------------------------

    def run(self, main, *args):
        """Run ``main(*args)`` as a fiber until it finishes; return its result.

        ``main`` runs in a copy of the caller's ``contextvars`` context.  When
        it finishes, the fibers still running are cancelled and waited for,
        and async generators still alive are closed.  Then ``main``'s result
        is returned or its exception raised.

        Raises:
            DeadlockError: every fiber was blocked with nothing left to wake it.
            RuntimeError: a scheduler already runs in this thread.
            BaseException: whatever ``main`` raised.
        """
        if _thread_state.scheduler is not None:
            raise RuntimeError("a poorio scheduler is already running in this thread")
        _thread_state.scheduler = self
        self.thread = get_ident()
        hooks = sys.get_asyncgen_hooks()
        self._agens = _WeakSet()
        sys.set_asyncgen_hooks(firstiter=self._agens.add, finalizer=self._finalize_agen)
        try:
            fiber = self.spawn(main, *args)
            fiber._observed = True  # run() hands its outcome to the caller
            self._loop(fiber)
            for other in list(self._fibers):
                other.cancel()
            self._loop(None)
            self._close_agens()
            return fiber.result()
        finally:
            for other in list(self._fibers):  # only after an error escaped the loop
                self._abandon(other, Cancelled())
            sys.set_asyncgen_hooks(*hooks)
            self._agens = None
            self.current = None
            self.thread = None
            _thread_state.scheduler = None

    def spawn(self, fn, *args, name: str | None = None, parent=None, group=None) -> Fiber:
        """Start ``fn(*args)`` as a new fiber, scheduled to run soon, in a copy of the current context.

        ``parent``: the cancel scope it runs under (a ``Fiber`` means that
        fiber's innermost scope now), so cancelling it cancels the new fiber.

        ``fn(*args)`` may return any awaitable (``spawn(poorio.sleep, 1)``).

        Raises:
            TypeError: ``fn(*args)`` did not return an awaitable.
        """
        coro = fn(*args)
        if coro.__class__ is not _CoroutineType and not hasattr(coro, "send"):
            if not hasattr(coro, "__await__"):
                raise TypeError(f"spawn() needs an async function; {fn!r} returned {coro!r}")
            coro = coro.__await__()
        if parent.__class__ is Fiber:
            parent = parent._scope
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
        fd = fd_of(obj, "notify_closing()'s argument")
        for context in self._notifier.forget(fd):
            error = ClosedResourceError(f"fd {fd} was closed while a fiber waited on it")
            if context.__class__ is Fiber:
                context._wait = None
                context._exc = error
                self._ready.append(context)
            else:  # a Suspension, or a _Tagged holding one
                getattr(context, "susp", context).fail(error)

    def call_threadsafe(self, fn, *args) -> None:
        """Run ``fn(*args)`` in the scheduler's thread soon; callable from any thread.

        Raises:
            ClosedResourceError: the scheduler has finished.
        """
        self._notifier.post(_Call(self, fn, args))  # thread-safe, and wakes a blocked loop

    def post(self, context) -> None:
        """Call ``context.on_event()`` in the scheduler's thread soon; callable from any thread.

        The promise: if the scheduler closes before it runs, it calls
        ``context.abandon()`` instead (in the closing thread), so a poster
        waiting for an answer always gets one.

        Raises:
            ClosedResourceError: the scheduler has finished (neither method is called).
        """
        self._notifier.post(context)

    def check_thread(self, what) -> None:
        """Raise ``RuntimeError`` unless called from the thread running this scheduler (or none runs it).

        Fibers, scopes, groups and the fiber primitives belong to one
        scheduler; another thread reaches them through ``call_threadsafe``
        (``poorio.from_thread``).
        """
        thread = self.thread
        if thread is not None and thread != get_ident():
            raise RuntimeError(
                f"{what!r} belongs to the poorio scheduler of another thread; use poorio.from_thread "
                "(or call_threadsafe) to reach it from this one"
            )

    def add_deadline(self, deadline: float, context) -> list:
        """Call ``context.on_event()`` at ``deadline`` (``time.monotonic()``); returns a handle for ``cancel_deadline``."""
        return self._notifier.add_timer(deadline, context)

    def cancel_deadline(self, handle: list) -> None:
        """Forget a deadline from ``add_deadline`` (fine if it already fired)."""
        self._notifier.cancel_timer(handle)

    def watch_signal(self, signum: int, context) -> None:
        """Call ``context.on_event()`` each time signal ``signum`` arrives (main thread), until ``unwatch_signal``."""
        self._notifier.watch_signal(signum, context)

    def unwatch_signal(self, signum: int) -> None:
        """Stop watching ``signum`` (the previous handler is restored after the last listener)."""
        self._notifier.unwatch_signal(signum)

    def room(self) -> int:
        """How many more fds fibers can start waiting on before the pool is full.

        The capacity less the fds registered now; an fd an IO object keeps
        registered between its waits counts as taken.  IO objects use it for
        back-pressure: a ``Listener`` stops accepting when there is no room
        (see ``wait_for_room``) rather than accept connections it could not
        wait on.
        """
        return self._notifier.room()

    async def wait_for_room(self, count: int = 1) -> None:
        """Park this fiber until ``room()`` is at least ``count`` (fds closing or done waiting free slots).

        Raises:
            ValueError: ``count`` is not an int from 1 to the capacity.
            Cancelled: the fiber was cancelled while it waited.
        """
        notifier = self._notifier
        capacity = notifier.capacity
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= capacity:
            raise ValueError(f"count must be an int from 1 to the capacity ({capacity}), not {count!r}")
        while notifier.room() < count:
            await suspend(self._room_waiter(count), f"waiting for room for {count} fd(s) in the pool")

    def _room_waiter(self, count: int):
        def setup(susp) -> None:
            self._room_waiters.append(susp)
            if not 0 < self._room_wanted <= count:
                self._room_wanted = count

        return setup

    def _wake_room_waiters(self) -> None:
        """There is room for one of the fibers in ``wait_for_room``: each looks again (at its own count)."""
        waiters = self._room_waiters
        self._room_waiters = []
        self._room_wanted = 0
        for susp in waiters:
            susp.complete()  # a cancelled one is already done: no-op

    def statistics(self) -> SchedulerStatistics:
        """Fibers alive, ready, waiting on IO and sleeping; fds, timers and waits; switches, polls, deliveries."""
        io_waits = sleeping = 0
        for fiber in self._fibers:
            kind = fiber._wait.__class__
            io_waits += kind is YieldForIo
            sleeping += kind is Sleep
        notifier = self._notifier.statistics()
        return SchedulerStatistics(
            backend=notifier.backend,
            capacity=notifier.capacity,
            fds=notifier.fds,
            fibers=len(self._fibers),
            ready=len(self._ready) + len(self._woken),
            io_waits=io_waits,
            sleeping=sleeping,
            timers=notifier.timers,  # sleeps and cancel-scope deadlines
            events=notifier.watching + notifier.timers + notifier.expected + notifier.signals + notifier.operations,
            switches=self._switches,
            polls=self._polls,
            delivered=self._delivered,
        )

    def fibers(self) -> tuple:
        """A ``FiberInfo`` for every live fiber, in spawn order."""
        current = self.current
        table = []
        for f in self._fibers:
            if f._wait is not None:
                state, waiting, since = "waiting", repr(f._wait), f._since
            else:
                state, waiting, since = ("running" if f is current else "ready"), None, None
            table.append(FiberInfo(id=f._id, name=f.name, state=state, waiting=waiting, since=since))
        return tuple(table)

    def dump(self) -> str:
        """One line per live fiber: its number, name and what it is doing or waiting on."""
        return "\n".join(f"#{f._id} {f.name}: {f._state()}" for f in self._fibers)

    def report(self, message: str, error: BaseException | None = None) -> None:
        """Log ``message`` on the ``poorio`` logger, with ``error``'s traceback if given."""
        exc_info = (type(error), error, error.__traceback__) if error is not None else None
        _log.error(message, exc_info=exc_info)

    @property
    def backend(self) -> str:
        """The readiness backend under this scheduler."""
        return self._notifier.backend

    @property
    def completes_io(self) -> bool:
        """Whether there is a proactor, so a suspension can ``start_read``/``start_write`` (io_uring; IOCP on Windows)."""
        return self._notifier.completes_io

    @property
    def notifier(self) -> Notifier:
        """The event layer's ``Notifier`` underneath (to read: its ``statistics()``, ``interest(fd)``)."""
        return self._notifier

    def close(self) -> None:
        """Release the notifier and its pool; posts it never ran are abandoned (see ``post``)."""
        for context in self._notifier.close():
            try:
                context.abandon()
            except Exception as error:
                self.report(f"abandoning {context!r} failed", error)

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- the loop ------------------------------------------------------------------

    def _loop(self, main) -> None:
        """Step fibers until ``main`` is done (``None``: until no fiber is left)."""
        ready = self._ready
        woken = self._woken
        notifier = self._notifier
        steps = 0  # since the last poll
        while main._coro is not None if main is not None else self._fibers:
            if self._room_wanted and notifier.room() >= self._room_wanted:
                self._wake_room_waiters()
            if woken or ready:
                if woken:
                    steps += self._run_ready(woken, len(woken))
                if ready:
                    steps += self._run_ready(ready, _POLL_EVERY)
                if self._escalate is not None:
                    raise self._escalate
                if not (ready or woken):
                    steps = 0  # and check whether the loop is over before blocking
                elif steps >= _POLL_EVERY:  # more to run: let IO and timers in first, without blocking
                    steps = 0
                    self._dispatch(notifier.collect(0.0))
                continue
            if notifier.busy():
                self._dispatch(notifier.collect(None))  # as long as it takes (bounded by deadlines)
            else:
                self._deadlock(main)

    def _run_ready(self, queue: deque, limit: int) -> int:
        """Step the fibers in ``queue``, oldest first, once each -- at most ``limit``; return how many."""
        ready = self._ready
        popleft = queue.popleft
        handlers = self._handlers
        notifier = self._notifier
        watch = notifier.watch
        now = notifier.now  # "since" for every fiber that parks in this batch: the clock of the last poll
        count = len(queue)
        if count > limit:
            count = limit
        self._switches += count
        for _ in range(count):
            fiber = popleft()
            self.current = fiber
            try:
                exc = fiber._exc
                if exc is None:
                    trap = _run_in(fiber._context, fiber._coro.send, fiber._value)
                else:
                    fiber._exc = None
                    trap = _run_in(fiber._context, fiber._coro.throw, exc)
            except StopIteration as stop:
                self._finish(fiber, stop.value, None)
            except BaseException as error:
                self._finish(fiber, None, error)
            else:
                cls = trap.__class__
                if cls is YieldForIo:
                    # The most frequent trap, handled here rather than through
                    # the table (the hottest path there is).  The fiber is
                    # itself the notifier's context: the report resumes it
                    # (and _dispatch clears its _value then).
                    if fiber._scope._effective:  # cancelled: resumed with Cancelled, not parked
                        fiber._exc = Cancelled()
                        ready.append(fiber)
                    else:
                        try:
                            watch(trap.fd, trap.events, fiber, trap.kept)
                        except Exception as error:
                            self._io_failed(fiber, trap, error)
                        else:
                            fiber._wait = trap
                            fiber._since = now
                else:
                    handler = handlers.get(cls)
                    if handler is None:
                        self._on_foreign(fiber, trap)
                    else:
                        handler(fiber, trap)
        self.current = None
        return count

    def _dispatch(self, fired: list) -> None:
        """Resume what the notifier reported: fibers parked on an fd or a deadline, or other contexts.

        What a report wakes joins the *woken* lane, stepped before the fibers
        that merely yielded or were spawned: a burst of thousands of new
        fibers then delays a socket or a timer by one batch, not by all of
        them.  The other lane still gets a batch each round, so neither starves.
        """
        self._polls += 1
        self._delivered += len(fired)
        woken = self._woken
        ready, self._ready = self._ready, woken  # a context's on_event() wakes fibers into this lane too
        try:
            for context in fired:
                if context.__class__ is Fiber:
                    if context._wait is not None:  # not woken some other way meanwhile
                        context._wait = None
                        context._value = None
                        woken.append(context)
                else:
                    context.on_event()
        finally:
            self._ready = ready

    # -- trap handlers: each records an outcome, none raises ---------------------

    def _cancelled(self, fiber: Fiber) -> bool:
        """Whether ``fiber`` must not park: it is cancelled, so it is resumed with ``Cancelled``."""
        if fiber._scope._effective:
            fiber._exc = Cancelled()
            fiber._value = None
            self._ready.append(fiber)
            return True
        return False

    def _on_checkpoint(self, fiber: Fiber, trap: Checkpoint) -> None:
        fiber._value = None
        if fiber._scope._effective:
            fiber._exc = Cancelled()
        self._ready.append(fiber)

    def _on_sleep(self, fiber: Fiber, trap: Sleep) -> None:
        if self._cancelled(fiber):
            return
        deadline = trap.deadline
        # A deadline that has passed is armed all the same, so it wakes after
        # every earlier deadline that is due, not ahead of them.  Forever needs
        # no timer at all.
        fiber._value = None if deadline == math.inf else self._notifier.add_timer(deadline, fiber)
        fiber._wait = trap
        fiber._since = self._notifier.now

    def _io_failed(self, fiber: Fiber, trap: YieldForIo, error: Exception) -> None:
        """The fd could not be watched (busy, pool full, EBADF...): the fiber is resumed with why."""
        if isinstance(error, AlreadyRegisteredError):
            error = BusyResourceError(f"another fiber is already waiting for {trap!r}")
        fiber._exc = error
        self._ready.append(fiber)

    def _on_suspend(self, fiber: Fiber, trap: Suspend) -> None:
        if trap.abortable and self._cancelled(fiber):
            return
        susp = Suspension(self, fiber, trap.abortable, trap.what)
        fiber._wait = susp
        fiber._since = self._notifier.now
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
        fiber._coro = fiber._wait = None  # done; let go of its frames and waits
        fiber._value = result
        fiber._exc = error
        del self._fibers[fiber]
        if fiber._parent is not None:
            fiber._detach()
        observed = fiber._observed
        joiners = fiber._joiners
        if joiners is not None:
            fiber._joiners = None
            for waiter in joiners:
                if waiter.complete():
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
        """End a fiber that can never run again: drop its registrations, close its coroutine."""
        fiber._unpark()
        try:
            fiber._context.run(fiber._coro.close)
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
        wait = main._wait
        if wait.__class__ is Suspension:
            wait.abortable = True
            wait.fail(error)
        for fiber in list(self._fibers):
            if fiber is not main:
                fiber.cancel()

    # -- async generators ------------------------------------------------------------

    def _finalize_agen(self, agen) -> None:
        """The asyncgen finalizer hook: an unfinished generator is being collected (any thread)."""
        try:
            self.call_threadsafe(self._spawn_aclose, agen)
        except ClosedResourceError:
            pass  # the scheduler is gone: nothing can run its cleanup any more

    def _spawn_aclose(self, agen) -> None:
        self.spawn(agen.aclose, name=f"aclose of {getattr(agen, '__qualname__', agen)!s}")

    def _close_agens(self) -> None:
        """Close every async generator still alive, each in a fiber of its own (as asyncio's shutdown_asyncgens)."""
        agens = self._agens
        while agens:
            for agen in list(agens):
                agens.discard(agen)
                self._spawn_aclose(agen)
            self._loop(None)
