"""The notifier's clock: a heap of deadlines, each holding the context to report when it passes.

An armed timer is one heap entry, the list ``[deadline, seq, context]``;
``push`` returns it and it is its own handle.  Cancelling is O(1): the
entry's context is set to None and the entry stays in the heap as *stale*,
skipped when it surfaces.  When stale entries outnumber live ones (and
there are enough of them to matter), the heap is rebuilt without them, so a
program that arms and cancels timeouts all day keeps a heap the size of
what is live.  ``seq`` breaks ties, so equal deadlines come out in the order
they were armed, and the heap never compares two contexts.  Entries are
lists, not objects, so the heap compares them in C.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from itertools import count

__all__ = ["TimerHeap"]

# Rebuild once at least this many entries are stale and they outnumber the live ones.
COMPACT_MIN = 256


class TimerHeap:
    """Deadlines (``time.monotonic()`` seconds) and their contexts, earliest first."""

    __slots__ = ("heap", "stale", "_seq")

    def __init__(self) -> None:
        self.heap: list = []  # [deadline, seq, context]; stale once context is None
        self.stale = 0  # how many entries in ``heap`` are stale
        self._seq = count()

    def push(self, deadline: float, context) -> list:
        """Arm a timer reporting ``context`` at ``deadline``; returns its entry, the handle to ``cancel``."""
        entry = [deadline, next(self._seq), context]
        heappush(self.heap, entry)
        return entry

    def cancel(self, entry: list) -> bool:
        """Disarm ``entry``; False if it already fired or was cancelled."""
        if entry[2] is None:
            return False
        entry[2] = None
        self.stale += 1
        heap = self.heap
        if self.stale >= COMPACT_MIN and self.stale * 2 > len(heap):
            heap[:] = [live for live in heap if live[2] is not None]
            heapify(heap)
            self.stale = 0
        return True

    def first(self) -> float | None:
        """The earliest live deadline, or None; drops the stale entries in its way."""
        heap = self.heap
        while heap:
            top = heap[0]
            if top[2] is not None:
                return top[0]
            heappop(heap)
            self.stale -= 1
        return None

    def pop_due(self, now: float, fired: list) -> None:
        """Disarm the live entries due by ``now`` and append their contexts to ``fired``, earliest first."""
        heap = self.heap
        while heap and heap[0][0] <= now:
            entry = heappop(heap)
            context = entry[2]
            if context is not None:
                entry[2] = None  # fired: a later cancel() is a no-op
                fired.append(context)
            else:
                self.stale -= 1

    def clear(self) -> None:
        """Disarm every entry."""
        for entry in self.heap:
            entry[2] = None
        self.heap.clear()
        self.stale = 0

    def __len__(self) -> int:
        """How many timers are armed."""
        return len(self.heap) - self.stale

    def __repr__(self) -> str:
        return f"<TimerHeap {len(self)} armed, {self.stale} stale>"
