"""Calls from other threads into a running scheduler: ``run(async_fn, *args)`` and ``run_sync(fn, *args)``.

A poorio scheduler and everything its fibers use -- fibers, cancel scopes,
groups, channels, locks -- belong to the thread that runs it; touching them
from another thread raises ``RuntimeError``.  This module is the way in
(after trio's ``trio.from_thread``)::

    def blocking_work():                      # runs in a worker thread...
        data = compute()
        poorio.from_thread.run(queue.put, data)   # ...and hands a value to the fibers
        return poorio.from_thread.run_sync(len, queue)

    await poorio.run_in_thread(blocking_work)

Both calls block the calling thread until the scheduler's thread has done
the work, and return its result or raise its exception there.  In a thread
started by ``run_in_thread`` the scheduler is found by itself, and
``run``'s fiber runs under the calling fiber's cancel scope: cancelling that
fiber cancels it too (the thread then gets ``Cancelled``, and should let it
propagate).  Any other thread passes ``scheduler=`` -- the object
``poorio.current_scheduler()`` returned inside the scheduler's thread.

What it does not do: call in from the scheduler's own thread (that would
wait for itself: ``RuntimeError``), or reach a scheduler that has ended
(``ClosedResourceError``).
"""

from __future__ import annotations

from _thread import allocate_lock, get_ident

from .errors import ClosedResourceError
from .threads import calling_fiber

__all__ = ["run", "run_sync"]


class _Request:
    """One call carried into the scheduler's thread, and the lock its thread waits on for the outcome."""

    __slots__ = ("scheduler", "fn", "args", "is_async", "parent", "done", "ok", "value")

    def __init__(self, scheduler, fn, args: tuple, is_async: bool, parent) -> None:
        self.scheduler = scheduler
        self.fn = fn
        self.args = args
        self.is_async = is_async
        self.parent = parent  # the fiber whose cancel scope a run() fiber runs under, or None
        self.done = allocate_lock()
        self.done.acquire()  # released once the outcome is in
        self.ok = False
        self.value = None

    def on_event(self) -> None:
        """In the scheduler's thread: make the call, or start the fiber that makes it."""
        try:
            if self.is_async:
                name = f"from_thread.run({getattr(self.fn, '__qualname__', self.fn)!s})"
                self.scheduler.spawn(self._fiber, name=name, parent=self.parent)
                return
            self._settle(True, self.fn(*self.args))
        except BaseException as error:  # everything goes back to the calling thread
            self._settle(False, error)

    async def _fiber(self) -> None:
        try:
            value = await self.fn(*self.args)
        except BaseException as error:
            self._settle(False, error)
        else:
            self._settle(True, value)

    def abandon(self) -> None:
        """The scheduler ended before the call could run."""
        self._settle(False, ClosedResourceError("the poorio scheduler ended before the call from a thread could run"))

    def _settle(self, ok: bool, value) -> None:
        self.ok = ok
        self.value = value
        self.done.release()

    def wait(self):
        self.done.acquire()
        if self.ok:
            return self.value
        error, self.value = self.value, None  # no cycle through the traceback
        raise error


def _call(fn, args: tuple, scheduler, is_async: bool):
    parent = None
    if scheduler is None:
        caller = calling_fiber()
        if caller is None:
            raise RuntimeError(
                "poorio.from_thread needs scheduler= outside threads started by poorio.run_in_thread "
                "(pass the object poorio.current_scheduler() returned in the scheduler's thread)"
            )
        scheduler, parent = caller
    if scheduler.thread == get_ident():
        raise RuntimeError("poorio.from_thread called from the scheduler's own thread: it would wait for itself")
    request = _Request(scheduler, fn, args, is_async, parent)
    scheduler.post(request)  # ClosedResourceError if it has ended
    return request.wait()


def run(async_fn, *args, scheduler=None):
    """Run ``async_fn(*args)`` as a fiber of the scheduler and block this thread until it ends; return its result.

    Raises:
        RuntimeError: no scheduler given or found, or called from the scheduler's own thread.
        ClosedResourceError: the scheduler has ended.
        Cancelled: the fiber was cancelled (with the ``run_in_thread`` caller).
        BaseException: whatever ``async_fn`` raised.
    """
    return _call(async_fn, args, scheduler, True)


def run_sync(fn, *args, scheduler=None):
    """Call ``fn(*args)`` in the scheduler's thread and block this thread until it returns; return its result.

    Raises:
        RuntimeError: no scheduler given or found, or called from the scheduler's own thread.
        ClosedResourceError: the scheduler has ended.
        BaseException: whatever ``fn`` raised.
    """
    return _call(fn, args, scheduler, False)
