"""The event set's clock: a heap of deadlines with lazy cancellation.

Each armed event owns exactly one live entry, a ``(deadline, seq, event)``
tuple it also keeps in ``event._entry``.  Cancelling is O(1): the event
forgets its entry, which stays in the heap as *stale* and is skipped when
it surfaces.  When stale entries outnumber live ones (and there are enough
of them to matter), the heap is rebuilt without them, so a program that
arms and cancels timeouts all day keeps a heap the size of what is live.
``seq`` breaks ties, so equal deadlines come out in the order they were
armed, and tuples never compare two events.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from itertools import count

__all__ = ["TimerHeap"]

# Rebuild once at least this many entries are stale and they outnumber the live ones.
COMPACT_MIN = 256


class TimerHeap:
    """Deadlines (``time.monotonic()`` seconds) of events, earliest first."""

    __slots__ = ("heap", "stale", "_seq")

    def __init__(self) -> None:
        self.heap: list = []  # (deadline, seq, event); stale unless event._entry is the tuple
        self.stale = 0  # how many entries in ``heap`` are stale
        self._seq = count()

    def push(self, ev, deadline: float) -> None:
        """Arm ``ev`` for ``deadline``; it must not be armed already."""
        entry = (deadline, next(self._seq), ev)
        ev._entry = entry
        ev.deadline = deadline
        heappush(self.heap, entry)

    def cancel(self, ev) -> None:
        """Disarm ``ev`` if it is armed."""
        if ev._entry is not None:
            ev._entry = None
            self.stale += 1
            if self.stale >= COMPACT_MIN and self.stale * 2 > len(self.heap):
                heap = self.heap
                heap[:] = [entry for entry in heap if entry[2]._entry is entry]
                heapify(heap)
                self.stale = 0

    def rearm(self, ev, deadline: float) -> None:
        """Move ``ev``'s deadline, armed or not."""
        self.cancel(ev)
        self.push(ev, deadline)

    def first(self) -> float | None:
        """The earliest live deadline, or None; drops the stale entries in its way."""
        heap = self.heap
        while heap:
            top = heap[0]
            if top[2]._entry is top:
                return top[0]
            heappop(heap)
            self.stale -= 1
        return None

    def pop_due(self, now: float) -> list:
        """Disarm and return the live entries due by ``now``, earliest first."""
        heap = self.heap
        due = []
        while heap and heap[0][0] <= now:
            entry = heappop(heap)
            ev = entry[2]
            if ev._entry is entry:
                ev._entry = None
                due.append(entry)
            else:
                self.stale -= 1
        return due

    def clear(self) -> None:
        """Forget every entry (the caller disarms the events)."""
        self.heap.clear()
        self.stale = 0

    def __len__(self) -> int:
        """How many events are armed."""
        return len(self.heap) - self.stale

    def __repr__(self) -> str:
        return f"<TimerHeap {len(self)} armed, {self.stale} stale>"
