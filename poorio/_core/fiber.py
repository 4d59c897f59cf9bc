"""Fibers and the one suspension each parked fiber waits on.

A ``Fiber`` wraps a coroutine that the scheduler steps.  Until it ends it is
running, on the ready queue, or parked on exactly one ``Suspension``.

A ``Suspension`` is completed at most once, by whichever party gets there
first: an fd becoming ready, a timer, a fiber it joins, a channel partner, a
worker thread, or cancellation.  The others find it already ``done`` and
drop it -- they never need to be told.  That is the primitive the
Concurrent-ML operations are built on: an operation that must block
registers the *same* suspension with every party it could synchronise with,
and the first to complete it wins.  Cleanup callbacks (``on_wake``) run when
it completes, however that happens, so nothing stays registered.

Internal API for the layers above (ops, IO objects, thread offload)::

    value = await suspend(setup)          # poorio.traps.suspend
    def setup(susp):                      # runs in the scheduler, right after parking
        susp.watch(READ, fd)              # complete on an event-set event...
        waiters.append(susp)              # ...or let another party call:
    susp.complete(value) / susp.fail(exc) # -> True if this call woke the fiber
    susp.on_wake(callback)                # cleanup, run once on completion
    susp.expect_thread(); susp.complete_threadsafe(value)   # from another thread
"""

from __future__ import annotations

from .cancel import CancelNode
from ..errors import AlreadyRegisteredError, BusyResourceError, Cancelled
from ..events import VIRTUAL_PERSISTENT
from .traps import suspend

__all__ = ["Fiber", "Suspension"]


class Suspension:
    """What a parked fiber waits on; completed at most once.

    Only the scheduler's thread may call ``complete``/``fail``/``watch``/
    ``on_wake``; another thread uses ``complete_threadsafe``/``fail_threadsafe``.
    """

    __slots__ = ("fiber", "done", "abortable", "_sched", "_eid", "_cleanups")

    def __init__(self, sched, fiber, abortable: bool = True) -> None:
        self.fiber = fiber
        self.done = False  # True once completed; every other waker then drops it
        self.abortable = abortable  # cancellation completes it with Cancelled
        self._sched = sched
        self._eid = None  # the first event watched, deleted on wake unless it fired
        self._cleanups = None  # callables run once on wake, a list once there are any

    def complete(self, value=None) -> bool:
        """Wake the fiber with ``value`` as the result of its wait; False if already completed."""
        if self.done:
            return False
        self.fiber._value = value
        self._wake()
        return True

    def fail(self, error: BaseException) -> bool:
        """Wake the fiber with ``error`` raised at its wait; False if already completed."""
        if self.done:
            return False
        self.fiber._exc = error
        self._wake()
        return True

    def _wake(self) -> None:
        self.done = True
        fiber = self.fiber
        fiber._susp = None
        self._sched._ready.append(fiber)
        if self._eid is not None or self._cleanups is not None:
            self._cleanup()

    def on_wake(self, callback) -> None:
        """Run ``callback()`` once, when the suspension completes (however it does)."""
        if self._cleanups is None:
            self._cleanups = [callback]
        else:
            self._cleanups.append(callback)

    def watch(self, kind: str, source=None, timeout=None, value=None, lazy: bool = False) -> int:
        """Complete with ``value`` when an event of ``kind`` on ``source`` fires; returns its id.

        ``kind``, ``source``, ``timeout`` and ``lazy`` are as for
        ``EventSet.add`` (a timer's source is its delay in seconds).  The
        event is deleted when the suspension completes some other way.

        Raises:
            BusyResourceError: another fiber already waits for ``kind`` on that fd.
            PoolFullError: the pool has no room for another fd.
            OSError: the kernel refused the fd (real errno).
        """
        events = self._sched._events
        context = self if value is None else _Waker(self, value)
        try:
            eid = events.add(kind, source, context, timeout, lazy=lazy)
        except AlreadyRegisteredError:
            raise BusyResourceError(
                f"another fiber is already waiting for {kind!r} events on {source!r}"
            ) from None
        if self._eid is None:
            self._eid = eid
        else:
            self.on_wake(lambda: events.delete(eid))
        return eid

    def expect_thread(self) -> None:
        """Declare that another thread will complete this suspension.

        Until it does, the scheduler waits for it instead of reporting a
        deadlock: a never-triggered virtual event keeps its event set busy.
        """
        self.watch(VIRTUAL_PERSISTENT)

    def complete_threadsafe(self, value=None) -> None:
        """``complete(value)`` from any thread: queued, and the scheduler woken to run it."""
        self._sched.call_threadsafe(self.complete, value)

    def fail_threadsafe(self, error: BaseException) -> None:
        """``fail(error)`` from any thread: queued, and the scheduler woken to run it."""
        self._sched.call_threadsafe(self.fail, error)

    def _on_event(self, event) -> None:
        if event.id == self._eid:
            self._eid = None  # it fired, so the event set has already dropped it
        self.complete()

    def _cleanup(self) -> None:
        eid = self._eid
        if eid is not None:
            self._eid = None
            self._sched._events.delete(eid)
        cleanups = self._cleanups
        if cleanups is not None:
            self._cleanups = None
            for callback in cleanups:
                try:
                    callback()
                except Exception as error:  # a waker's cleanup must not break the loop
                    self._sched.report(f"a cleanup of {self.fiber!r}'s suspension failed", error)


class _Waker:
    """Event context that completes a suspension with a chosen value."""

    __slots__ = ("susp", "value")

    def __init__(self, susp: Suspension, value) -> None:
        self.susp = susp
        self.value = value

    def _on_event(self, event) -> None:
        susp = self.susp
        if event.id == susp._eid:
            susp._eid = None
        susp.complete(self.value)


class Fiber(CancelNode):
    """A running coroutine: spawn it with ``poorio.spawn``, then ``join`` or ``cancel`` it.

    A fiber is also the outermost cancel scope of its own code: ``cancel()``
    raises ``Cancelled`` at its current or next suspension point.
    """

    __slots__ = (
        "_sched", "_coro", "_id", "_name", "_value", "_exc", "_susp", "_waiting",
        "_scope", "_done", "_joiners", "_group", "_observed", "_since",
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
        self._coro = coro
        # Fields share duty where their lives do not overlap: every byte counts
        # when 100,000 fibers wait at once.
        self._name = fn if name is None else name  # the name, or the function it is taken from
        self._id = ident
        self._value = None  # what to send into the coroutine when it next runs; once done, its result
        self._exc = None  # ...or what to throw into it; once done, the exception it ended with
        self._susp = None  # the Suspension it is parked on, if any
        self._waiting = None  # the trap it parked with, for dump()
        self._since = None  # time.monotonic() when it last parked, for fibers()
        self._scope = self  # innermost cancel scope entered by its code
        self._done = False
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

    def done(self) -> bool:
        """Whether the fiber has finished (returned, failed or was cancelled)."""
        return self._done

    def cancelled(self) -> bool:
        """Whether the fiber finished by ``Cancelled``."""
        return self._done and isinstance(self._exc, Cancelled)

    def result(self):
        """The fiber's return value; re-raises its exception if it failed or was cancelled.

        Raises:
            RuntimeError: the fiber has not finished yet.
            BaseException: the exception the fiber ended with.
        """
        if not self._done:
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
        if not self._done:
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
            BaseException: the exception the joined fiber ended with.
        """
        if not self._done:
            if self is self._sched.current:
                raise RuntimeError("a fiber cannot join itself")
            await suspend(self._add_joiner, self)
        return self.result()

    def cancel(self) -> None:
        """Raise ``Cancelled`` in the fiber at its current or next suspension point.

        The cancellation stays in force: every later suspension point raises
        it again, except inside a shielded scope.  No effect on a finished fiber.
        """
        if self._done or self._cancel_called:
            return
        self._cancel_called = True
        self._update()

    def _add_joiner(self, susp: Suspension) -> None:
        if self._done:
            susp.complete()
        elif self._joiners is None:
            self._joiners = [susp]
        else:
            self._joiners.append(susp)

    def _deliver_cancel(self) -> None:
        """Its innermost scope was just cancelled: wake it if it is parked abortably."""
        susp = self._susp
        if susp is not None and susp.abortable:
            susp.fail(Cancelled())

    def _state(self) -> str:
        if self._done:
            if self._exc is None:
                return "finished"
            return "cancelled" if isinstance(self._exc, Cancelled) else "failed"
        if self._susp is not None:
            return f"waiting on {self._waiting!r}"
        if self is self._sched.current:
            return "running"
        return "ready"

    def __repr__(self) -> str:
        return f"<Fiber #{self._id} {self.name!r} {self._state()}>"
