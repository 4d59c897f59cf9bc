"""``WaitQueue``: the fibers parked on one side of a synchronisation object, and the rule that keeps wake-ups in their thread.

Channels, queues, conditions, locks and semaphores keep their waiters in
wait queues (``poorio.ops`` re-exports the class).  A waiter is what an
operation's ``block`` is handed: a fiber's ``Suspension``, or one branch of
a choice; it offers ``done``, ``scheduler``, ``complete(value)``,
``fail(error)`` and ``on_wake(callback)``.
"""

from __future__ import annotations

from _thread import get_ident
from collections import deque

__all__ = ["WaitQueue"]


class _Entry:
    """A waiter parked in a ``WaitQueue``, with the value it offers."""

    __slots__ = ("waiter", "value", "queue")

    def __init__(self, waiter, value, queue: deque) -> None:
        self.waiter = waiter
        self.value = value
        self.queue = queue  # the deque holding the entry; None once popped by a partner or dropped

    def __call__(self) -> None:
        """The waiter woke: leave the queue, unless a partner popped this entry already."""
        queue = self.queue
        if queue is not None:
            self.queue = None
            queue.remove(self)


class WaitQueue:
    """The waiters parked on one side of a synchronisation object, oldest first.

    ``park`` queues a waiter (with the value it offers); it leaves the queue
    by itself when it wakes some other way (cancellation, another branch of
    a choice).  ``pop`` hands out the oldest waiter still waiting, which the
    caller completes in the same step as it gives or takes the value -- so
    no value goes to a fiber that no longer wants it, nor is lost on one.

    The queue belongs to the scheduler whose fibers wait in it: a fiber of
    another thread's scheduler that would park beside them, or wake one of
    them, gets ``RuntimeError`` instead -- a wake-up never crosses threads
    silently (use ``poorio.from_thread`` to cross).
    """

    __slots__ = ("_entries", "_owner")

    def __init__(self, owner) -> None:
        self._entries: deque = deque()
        self._owner = owner  # the object this queue belongs to, named in errors

    def park(self, waiter, value=None) -> None:
        """Queue ``waiter`` until a partner pops it or it wakes otherwise.

        Raises:
            RuntimeError: fibers of another scheduler already wait here.
        """
        entries = self._entries
        if entries and entries[0].waiter.scheduler is not waiter.scheduler:
            raise RuntimeError(self._crossing())
        entry = _Entry(waiter, value, entries)
        entries.append(entry)
        waiter.on_wake(entry)

    def pop(self):
        """The oldest entry whose waiter still waits (``.waiter``, ``.value``), taken out; None if none.

        Raises:
            RuntimeError: the waiters belong to a scheduler running in another thread.
        """
        entries = self._entries
        while entries:
            entry = entries[0]
            waiter = entry.waiter
            if waiter.scheduler.thread != get_ident():
                raise RuntimeError(self._crossing())
            entries.popleft()
            entry.queue = None
            if not waiter.done:
                return entry
        return None

    def wake_all(self, value=None) -> None:
        """Complete every waiter with ``value``."""
        while True:
            entry = self.pop()
            if entry is None:
                return
            entry.waiter.complete(value)

    def fail_all(self, make_error) -> None:
        """Fail every waiter with ``make_error()``."""
        while True:
            entry = self.pop()
            if entry is None:
                return
            entry.waiter.fail(make_error())

    def _crossing(self) -> str:
        return (
            f"{self._owner!r} is waited on by fibers of a poorio scheduler running in another thread; "
            "fiber primitives belong to one scheduler (use poorio.from_thread to cross threads)"
        )

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)
