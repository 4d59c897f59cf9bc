"""Fibers, and the suspension a fiber parks on when more than the kernel or the clock may wake it.

A ``Fiber`` wraps a coroutine that the scheduler steps, in a
``contextvars`` context of its own.  Until it ends it is running, on the
ready queue, or parked.  A fiber parked on an fd or a deadline is itself
what the notifier reports: the scheduler makes it ready directly.  A fiber
that waits for anything else parks on a ``Suspension``.

A ``Suspension`` is completed at most once, by whichever party gets there
first: an fd becoming ready, a timer, a fiber it joins, a channel partner, a
worker thread, or cancellation.  The others find it already ``done`` and
drop it -- they never need to be told.  That is the primitive the
Concurrent-ML operations are built on: an operation that must block
registers the *same* suspension with every party it could synchronise with,
and the first to complete it wins.  Cleanup callbacks (``on_wake``) run when
it completes, however that happens, so nothing stays registered.

The suspension API, for the layers above (ops, IO objects, threads)::

    value = await suspend(setup)          # poorio._core.traps.suspend
    def setup(susp):                      # runs in the scheduler, right after parking
        susp.watch_fd(fd, READABLE)       # complete when the kernel says so...
        susp.watch_deadline(deadline)     # ...or when a deadline passes...
        waiters.append(susp)              # ...or let another party call:
    susp.complete(value) / susp.fail(exc) # -> True if this call woke the fiber
    susp.on_wake(callback)                # cleanup, run once on completion
    susp.expect_thread(); susp.complete_threadsafe(value)   # from another thread
    susp.start_read(fd, buffer, offset)   # complete with what the kernel read
    susp.start_write(fd, data, offset)    # (a proactor's operation: io_uring, IOCP)

**An operation the kernel completes owns its buffer until it is done.**
Cancelling a fiber parked on ``start_read``/``start_write`` cannot just
resume it: the kernel may still write into the buffer (the point Emilua's
docs make about proactors).  So cancellation *asks* for the operation's end
and the fiber stays parked until its one completion arrives: with
``ECANCELED`` it raises ``Cancelled``; if the operation won the race, its
real result is returned -- the bytes *were* moved and must not be lost --
and the still-cancelled scope raises at the next suspension point.
"""

from __future__ import annotations

from contextvars import copy_context
from errno import ECANCELED

from ..errors import AlreadyRegisteredError, BusyResourceError, Cancelled
from .cancel import CancelNode
from .traps import Sleep, Suspend, YieldForIo

__all__ = ["Fiber", "Suspension"]


class Suspension:
    """What a parked fiber waits on; completed at most once.

    Only the scheduler's thread may call ``complete``/``fail``/``watch_*``/
    ``on_wake``; another thread uses ``complete_threadsafe``/``fail_threadsafe``.
    """

    __slots__ = ("fiber", "done", "abortable", "scheduler", "what", "_cleanups", "_abort")

    def __init__(self, scheduler, fiber, abortable: bool = True, what=None) -> None:
        self.fiber = fiber
        self.what = what  # describes the wait, for dump()
        self.done = False  # True once completed; every other waker then drops it
        self.abortable = abortable  # cancellation completes it with Cancelled
        self.scheduler = scheduler  # the one whose thread may complete it
        self._cleanups = None  # callables run once on wake, a list once there are any
        self._abort = None  # an operation in flight: cancelling asks it to end, and waits

    def complete(self, value=None) -> bool:
        """Wake the fiber with ``value`` as the result of its wait; False if already completed."""
        if self.done:
            return False
        self.done = True
        fiber = self.fiber
        fiber._value = value
        fiber._wait = None
        self.scheduler._ready.append(fiber)
        if self._cleanups is not None:
            self._cleanup()
        return True

    def fail(self, error: BaseException) -> bool:
        """Wake the fiber with ``error`` raised at its wait; False if already completed."""
        if self.done:
            return False
        self.fiber._exc = error  # raised instead of the value sent
        return self.complete()

    def on_event(self) -> None:
        """A notifier reported what it watched: complete with None."""
        self.complete()

    @property
    def cancel_requested(self) -> bool:
        """Whether the parked fiber's innermost cancel scope is cancelled (it would be, were it abortable)."""
        return self.fiber._scope._effective

    def on_wake(self, callback) -> None:
        """Run ``callback()`` once, when the suspension completes (however it does)."""
        if self._cleanups is None:
            self._cleanups = [callback]
        else:
            self._cleanups.append(callback)

    def watch_fd(self, fd: int, direction: int, value=None) -> None:
        """Complete with ``value`` when ``fd`` is ready for ``direction`` (``READABLE``/``WRITABLE``).

        Raises:
            BusyResourceError: another fiber already waits on ``fd`` that way.
            PoolFullError: the pool has no room for another fd.
            OSError: the kernel refused the fd (real errno).
        """
        notifier = self.scheduler._notifier
        context = self if value is None else _Tagged(self, value)
        try:
            notifier.watch(fd, direction, context)
        except AlreadyRegisteredError:
            raise BusyResourceError(f"another fiber is already waiting for fd {fd} to be ready") from None
        self.on_wake(lambda: notifier.unwatch(fd, direction, context))

    def watch_deadline(self, deadline: float, value=None) -> None:
        """Complete with ``value`` once ``time.monotonic()`` reaches ``deadline``."""
        notifier = self.scheduler._notifier
        handle = notifier.add_timer(deadline, self if value is None else _Tagged(self, value))
        self.on_wake(lambda: notifier.cancel_timer(handle))

    def start_read(self, fd, buffer, offset: int = -1) -> Operation:
        """Complete with the bytes the kernel reads into ``buffer`` at ``offset`` (-1: the file position).

        A proactor's operation (``Scheduler.completes_io``): see the module
        docstring for cancellation.  ``buffer`` is the kernel's until the
        fiber resumes.  Returns the operation, which its owner may
        ``interrupt()`` (a stream being closed).

        Raises:
            BackendUnavailableError: the scheduler's backend has no proactor.
            PoolFullError: its proactor has ``capacity`` operations in flight.
            TypeError: ``buffer`` is read-only.
        """
        op = Operation(self)
        self.scheduler._notifier.start_read(fd, buffer, offset, op)
        self._abort = op.abort
        return op

    def start_write(self, fd, data, offset: int = -1) -> Operation:
        """Complete with the count of bytes the kernel writes from ``data`` at ``offset`` (-1: the file position).

        As ``start_read``; the count may be less than ``len(data)``.
        """
        op = Operation(self)
        self.scheduler._notifier.start_write(fd, data, offset, op)
        self._abort = op.abort
        return op

    def cancel(self) -> None:
        """The fiber's scope was cancelled: end the wait with ``Cancelled`` (or ask an operation to end).

        An operation is asked once; a cancellation delivered again (a
        shield raised and lowered) must not resume the fiber before the
        kernel has let go of its buffer.
        """
        abort = self._abort
        if abort is None:
            self.fail(Cancelled())
        elif not self.done:
            self._abort = _asked
            abort()

    def expect_thread(self) -> None:
        """Declare that another thread will complete this suspension.

        Until it does, the scheduler waits for it instead of reporting a deadlock.
        """
        notifier = self.scheduler._notifier
        notifier.expect()
        self.on_wake(notifier.unexpect)

    def complete_threadsafe(self, value=None) -> None:
        """``complete(value)`` from any thread: queued, and the scheduler woken to run it.

        Raises:
            ClosedResourceError: the scheduler has finished.
        """
        self.scheduler.call_threadsafe(self.complete, value)

    def fail_threadsafe(self, error: BaseException) -> None:
        """``fail(error)`` from any thread: queued, and the scheduler woken to run it.

        Raises:
            ClosedResourceError: the scheduler has finished.
        """
        self.scheduler.call_threadsafe(self.fail, error)

    def _cleanup(self) -> None:
        cleanups = self._cleanups
        self._cleanups = None
        for callback in cleanups:
            try:
                callback()
            except Exception as error:  # a waker's cleanup must not break the loop
                self.scheduler.report(f"a cleanup of {self.fiber!r}'s suspension failed", error)

    def __repr__(self) -> str:
        return str(self.what) if self.what is not None else "suspended"


class _Tagged:
    """Notifier context that completes a suspension with a chosen value (a choice's branch tag)."""

    __slots__ = ("susp", "value")

    def __init__(self, susp: Suspension, value) -> None:
        self.susp = susp
        self.value = value

    def on_event(self) -> None:
        self.susp.complete(self.value)


def _asked() -> None:
    """A suspension's abort once its operation was asked to end: nothing more to ask."""


class Operation:
    """A proactor operation in flight, and its notifier context: completes its suspension with the kernel's result."""

    __slots__ = ("susp", "result", "aborted")

    def __init__(self, susp: Suspension) -> None:
        self.susp = susp
        self.result = None  # set by the notifier before it reports the operation
        self.aborted = False

    def abort(self) -> None:
        """The fiber was cancelled: ask the kernel to stop; an ``ECANCELED`` ending raises ``Cancelled``."""
        self.aborted = True
        self.susp.scheduler._notifier.abort(self)

    def interrupt(self) -> None:
        """Ask the kernel to stop without cancelling the fiber: it gets the ``OSError`` (``ECANCELED``).

        For the owner of the fd, closing it under the operation; it turns
        that error into its own (``ClosedResourceError``).  A no-op once
        the operation has been reported.
        """
        if not self.susp.done:
            self.susp.scheduler._notifier.abort(self)

    def on_event(self) -> None:
        result = self.result
        if result.__class__ is int:
            self.susp.complete(result)
        elif self.aborted and result.errno == ECANCELED:
            self.susp.fail(Cancelled())
        else:
            self.susp.fail(result)


class _Joining:
    """What a fiber joining another waits on, as ``dump()`` shows it: the other by number and name only."""

    __slots__ = ("fiber",)

    def __init__(self, fiber) -> None:
        self.fiber = fiber

    def __repr__(self) -> str:
        # Never the other fiber's repr: it shows what *that* fiber waits on,
        # which may be a join of this one -- a deadlock would recurse forever.
        return f"join of #{self.fiber._id} {self.fiber.name!r}"


class Fiber(CancelNode):
    """A running coroutine: spawn it with ``poorio.spawn``, then ``join`` or ``cancel`` it.

    A fiber is also the outermost cancel scope of its own code: ``cancel()``
    raises ``Cancelled`` at its current or next suspension point.
    """

    __slots__ = (
        "_sched", "_coro", "_context", "_id", "_name", "_value", "_exc", "_wait", "_since",
        "_scope", "_joiners", "_group", "_observed",
    )  # fmt: skip

    def __init__(self, sched, coro, fn, name, ident: int, parent=None, group=None) -> None:
        # CancelNode's fields, set here rather than by _init_node: spawn is hot
        self._parent = None
        self._children = None
        self._cancel_called = False
        self._shield = False
        self._effective = False
        self._owner = None  # a fiber owns itself
        self._sched = sched
        self._coro = coro  # None once it has finished
        self._context = copy_context()  # the spawner's values; the fiber's own changes stay its own
        # Fields share duty where their lives do not overlap: every byte counts
        # when 100,000 fibers wait at once.
        self._name = fn if name is None else name  # the name, or the function it is taken from
        self._id = ident
        self._value = None  # what to send in when it next runs; a sleep's timer while it sleeps; its result once done
        self._exc = None  # ...or what to throw into it; once done, the exception it ended with
        self._wait = None  # what it is parked on: a YieldForIo or Sleep trap, or a Suspension; None if not parked
        self._since = None  # the notifier's clock when it parked, for fibers()
        self._scope = self  # innermost cancel scope entered by its code
        self._joiners = None  # Suspensions of fibers joining it, a list once there are any
        self._group = group
        self._observed = False  # someone has seen its outcome (join, result, group)
        if parent is not None:
            self._attach(parent)

    @property
    def name(self) -> str:
        """The name given to ``spawn``, or the function's qualified name."""
        name = self._name
        if name.__class__ is not str:  # still the function: name it once
            name = self._name = getattr(name, "__qualname__", None) or repr(name)
        return name

    @property
    def id(self) -> int:
        """The fiber's number, unique within its scheduler."""
        return self._id

    def done(self) -> bool:
        """Whether the fiber has finished (returned, failed or was cancelled)."""
        return self._coro is None

    def cancelled(self) -> bool:
        """Whether the fiber finished by ``Cancelled``."""
        return self._coro is None and isinstance(self._exc, Cancelled)

    def result(self):
        """The fiber's return value; re-raises its exception if it failed or was cancelled.

        Raises:
            RuntimeError: the fiber has not finished yet.
            BaseException: the exception the fiber ended with.
        """
        if self._coro is not None:
            raise RuntimeError(f"{self!r} has not finished")
        self._observed = True
        if self._exc is not None:
            raise self._exc
        return self._value

    def exception(self) -> BaseException | None:
        """The exception the fiber ended with, or None.

        Raises:
            RuntimeError: the fiber has not finished yet.
        """
        if self._coro is not None:
            raise RuntimeError(f"{self!r} has not finished")
        self._observed = True
        return self._exc

    async def join(self):
        """Wait for the fiber to finish; return its result or raise its exception.

        A cancelled fiber's join raises ``Cancelled``; check ``cancelled()``
        to tell that from this fiber's own cancellation.

        Raises:
            Cancelled: the joining fiber was cancelled while it waited, or the
                joined fiber was cancelled.
            RuntimeError: a fiber tried to join itself.
            BaseException: the exception the joined fiber ended with.
        """
        if self._coro is not None:
            if self is self._sched.current:
                raise RuntimeError("a fiber cannot join itself")
            await Suspend(self.add_joiner, _Joining(self))
        return self.result()

    def cancel(self) -> None:
        """Raise ``Cancelled`` in the fiber at its current or next suspension point.

        The cancellation stays in force: every later suspension point raises
        it again, except inside a shielded scope.  No effect on a finished fiber.

        Raises:
            RuntimeError: called from another thread than the fiber's scheduler's.
        """
        if self._coro is None or self._cancel_called:
            return
        self._sched.check_thread(self)
        self._cancel_called = True
        self._update()

    def add_joiner(self, waiter) -> None:
        """Complete ``waiter`` (a suspension, or a branch of a choice) when the fiber finishes.

        Raises:
            RuntimeError: ``waiter`` is this fiber's own (a fiber cannot join itself).
        """
        if waiter.fiber is self:
            raise RuntimeError("a fiber cannot join itself")
        if self._coro is None:
            waiter.complete()
        elif self._joiners is None:
            self._joiners = [waiter]
        else:
            self._joiners.append(waiter)

    def remove_joiner(self, waiter) -> None:
        """Forget a ``waiter`` given to ``add_joiner`` (fine if it is gone already)."""
        joiners = self._joiners
        if joiners is not None and waiter in joiners:
            joiners.remove(waiter)

    def _deliver_cancel(self) -> None:
        """Its innermost scope was just cancelled: wake it if it is parked abortably."""
        wait = self._wait
        if wait is None:
            return
        if wait.__class__ is Suspension:
            if wait.abortable:
                wait.cancel()
            return
        self._unpark()
        self._exc = Cancelled()
        self._sched._ready.append(self)

    def _unpark(self) -> None:
        """Take back whatever it is parked on, without waking it (cancellation, abandonment)."""
        wait = self._wait
        if wait is None:
            return
        self._wait = None
        cls = wait.__class__
        if cls is YieldForIo:
            self._sched._notifier.unwatch(wait.fd, wait.events, self)
        elif cls is Sleep:
            if self._value is not None:  # a sleep forever has no timer
                self._sched._notifier.cancel_timer(self._value)
            self._value = None
        else:  # a Suspension: completed by nobody now
            wait.done = True
            if wait._cleanups is not None:
                wait._cleanup()

    def _state(self) -> str:
        if self._coro is None:
            if self._exc is None:
                return "finished"
            return "cancelled" if isinstance(self._exc, Cancelled) else "failed"
        if self._wait is not None:
            return f"waiting on {self._wait!r}"
        if self is self._sched.current:
            return "running"
        return "ready"

    def __repr__(self) -> str:
        return f"<Fiber #{self._id} {self.name!r} {self._state()}>"
