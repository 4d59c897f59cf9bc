"""Callbacks to coroutines: a ``Completion`` is a callback to hand to a callback-style API, and the fiber awaits its call.

After "Callbacks to Coroutines" (the luv ``make_callback()`` pattern)::

    done = poorio.Completion()          # in a fiber: bound to this scheduler
    api.start_something(arg, done.callback)   # or done.errback for failures
    value = await done                  # the fiber parks until the API calls back

``callback(*args)`` resolves it with its one argument (None for none, a
tuple for several); ``errback(error)`` with an exception that ``await``
raises.  Either may be called from the scheduler's own thread or from any
other thread: a foreign thread queues the wake-up with
``Scheduler.call_threadsafe``, which wakes a blocked loop through its
wake-up fd at once.  ``completion.op()`` is the same wait as a Concurrent-ML
operation, so ``choice(done.op(), timeout_op(5))`` takes whichever comes first.

What users of asyncio's and trio's futures expect, and get here:

* The first call wins.  A second call (``callback`` after ``errback``,
  or twice) changes nothing: it is dropped with a warning on the
  ``poorio`` logger -- it never raises into the API's thread.
* A call after the scheduler has finished is dropped with a warning too.
  That path opens no fd and imports nothing: it may run in a thread
  that is itself being torn down.
* Cancelling the awaiting fiber works at once; the completion stays
  pending, and a later call is kept for whoever awaits it next (no
  warning: a timed-out wait is ordinary).  Any number of fibers of the
  owning scheduler may await it, before or after the call.
* Only a fiber that awaits a completion makes the scheduler wait for
  another thread: while one does, the scheduler does not report a
  deadlock (the call may come from a thread it cannot see, as with
  ``run_in_thread``).  A completion nobody awaits registers nothing, so
  it never hides a deadlock.  Bound a wait on an API that may never call
  back with ``fail_after`` or a ``timeout_op`` branch.

What this module does not do: cancel the foreign operation (nothing can
in general; the API's own cancel call is the caller's to make), or run
coroutines in other threads (see ``poorio.run_in_thread``).
"""

from __future__ import annotations

import logging
from _thread import allocate_lock, get_ident

from ._core.traps import current_scheduler, running_scheduler
from .errors import ClosedResourceError
from .ops import WOULD_BLOCK, Operation

__all__ = ["Completion"]

# Fetched now, not on the late path: a callback arriving at interpreter
# shutdown must not import or build anything.
_log = logging.getLogger("poorio")
_PENDING = object()  # the outcome before the first call


class Completion:
    """A one-shot result delivered by a callback, awaited by fibers of the scheduler that made it.

    Raises:
        RuntimeError: (when made) no poorio scheduler runs in this thread.
    """

    __slots__ = ("_sched", "_thread", "_lock", "_ok", "_outcome", "_waiters", "__weakref__")

    def __init__(self) -> None:
        self._sched = current_scheduler()
        self._thread = get_ident()
        self._lock = allocate_lock()  # makes the first call win when two threads race
        self._ok = True  # whether _outcome is a value (True) or an exception to raise
        self._outcome = _PENDING
        self._waiters = []  # waiters of parked fibers; touched only in the scheduler's thread

    # -- the callbacks: any thread, never raise -------------------------------------

    def callback(self, *args) -> None:
        """Resolve with ``args[0]`` (None for no argument, the tuple for several); any thread."""
        self._resolve(True, args[0] if len(args) == 1 else (args or None), "callback")

    def errback(self, error) -> None:
        """Resolve with ``error``, an exception (or class) that ``await`` raises; any thread.

        Anything else resolves it with a ``TypeError`` saying so, raised in
        the awaiting fiber rather than in the caller's thread.
        """
        if isinstance(error, type) and issubclass(error, BaseException):
            error = error()
        elif not isinstance(error, BaseException):
            error = TypeError(f"Completion.errback() takes an exception, not {error!r}")
        self._resolve(False, error, "errback")

    def _resolve(self, ok: bool, outcome, how: str) -> None:
        with self._lock:
            first = self._outcome is _PENDING
            if first:
                self._ok = ok
                self._outcome = outcome
        if not first:
            _drop(f"{how}() of a Completion that was already resolved", outcome)
            return
        if get_ident() == self._thread and self._running_here():
            self._wake()
            return
        try:
            self._sched.call_threadsafe(self._wake)
        except ClosedResourceError:
            _drop(f"{how}() of a Completion whose scheduler has finished", outcome)

    def _running_here(self) -> bool:
        return running_scheduler() is self._sched  # None once this thread's scheduler has finished

    def _wake(self) -> None:
        """Hand the outcome to every parked waiter (scheduler thread)."""
        waiters = self._waiters
        if not waiters:
            return
        self._waiters = []
        for waiter in waiters:
            _deliver(waiter, self._ok, self._outcome)

    # -- the awaiting side: the owning scheduler's fibers ------------------------------

    def done(self) -> bool:
        """Whether a callback or errback has been called."""
        return self._outcome is not _PENDING

    def op(self) -> Operation:
        """The operation of waiting for the call: its result is the callback's value.

        Raises:
            BaseException: (when performed) the exception given to ``errback``.
            RuntimeError: (when performed) in a thread other than the scheduler's that made it.
        """
        return _CompletionOp(self)

    def __await__(self):
        """``await completion``: the value given to ``callback``, or raise what ``errback`` got.

        Raises:
            Cancelled: the fiber was cancelled while it waited (the completion stays pending).
            RuntimeError: awaited from a thread other than the one whose scheduler made it.
            BaseException: the exception given to ``errback``.
        """
        return _CompletionOp(self).perform().__await__()

    def __repr__(self) -> str:
        if self._outcome is _PENDING:
            state = f"pending, {len(self._waiters)} waiting"
        else:
            state = f"{'value' if self._ok else 'error'} {self._outcome!r}"
        return f"<Completion {state}>"


class _CompletionOp(Operation):
    """Ready once the completion is resolved."""

    __slots__ = ("completion",)

    def __init__(self, completion: Completion) -> None:
        self.completion = completion

    def attempt(self):
        c = self.completion
        if get_ident() != c._thread or not c._running_here():
            raise RuntimeError("a Completion belongs to the scheduler that made it; await it in one of its fibers")
        with c._lock:
            ok, outcome = c._ok, c._outcome
        if outcome is _PENDING:
            return WOULD_BLOCK
        if not ok:
            raise outcome
        return outcome

    def block(self, waiter) -> None:
        c = self.completion
        with c._lock:
            ok, outcome = c._ok, c._outcome
        if outcome is not _PENDING:  # resolved by another thread since attempt(); its _wake finds no one
            _deliver(waiter, ok, outcome)
            return
        waiters = c._waiters
        waiters.append(waiter)
        waiter.expect_thread()  # the call may come from a thread the scheduler cannot see

        def leave() -> None:
            if waiter in c._waiters:
                c._waiters.remove(waiter)

        waiter.on_wake(leave)

    def __repr__(self) -> str:
        return "a Completion's callback"


def _deliver(waiter, ok: bool, outcome) -> None:
    if ok:
        waiter.complete(outcome)
    else:
        waiter.fail(outcome)


def _drop(what: str, outcome) -> None:
    """Log a call that cannot be delivered; never raise into the caller's thread."""
    try:
        _log.warning("%s was dropped (it carried %r)", what, outcome)
    except Exception:  # logging torn down at interpreter exit: nothing left to tell
        pass
