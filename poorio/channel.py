"""Channels and bounded queues between fibers, every put and get an operation.

A ``Queue`` holds up to ``maxsize`` values in a buffer, plus the fibers
parked on it: *getters* (only while the buffer is empty) and *putters* with
the value each offers (only while it is full).  A put hands its value
straight to a waiting getter, or else buffers it, or else blocks; a get
takes the oldest buffered value and lets the oldest waiting putter refill
the slot, or takes straight from a putter, or else blocks.

A ``Channel`` is a queue of size 0: an unbuffered rendezvous, where a put
completes only when a get takes its value (Go's ``make(chan T)``).

``close()`` ends a queue: later puts raise ``ChannelClosedError``, and gets
return what is still buffered, then raise ``EndOfChannel``.  Fibers parked on
it wake with those same errors.

Waiting fibers are kept in ``poorio.ops.WaitQueue``s: whoever pops a
waiter completes it in the same step as it takes or gives the value, and a
waiter woken some other way (a cancellation, another branch of a choice)
leaves by itself -- so nothing is left behind and no value goes to a fiber
that no longer wants it, nor is lost on one.  A queue belongs to the
scheduler whose fibers wait on it (see ``WaitQueue``).
"""

from __future__ import annotations

from collections import deque

from .errors import ChannelClosedError, EndOfChannel
from ._core.traps import Suspend
from .ops import WOULD_BLOCK, Operation
from .waitqueue import WaitQueue

__all__ = ["Queue", "Channel"]


class Queue:
    """A bounded FIFO of values between fibers; ``put`` blocks while it is full, ``get`` while empty."""

    __slots__ = ("_items", "_maxsize", "_getters", "_putters", "_closed", "__weakref__")

    def __init__(self, maxsize: int) -> None:
        """Make a queue holding at most ``maxsize`` values (0: a rendezvous, as ``Channel``).

        Raises:
            ValueError: ``maxsize`` is negative.
            TypeError: ``maxsize`` is not an int.
        """
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(f"a queue's maxsize must be an int, not {maxsize!r}")
        if maxsize < 0:
            raise ValueError(f"a queue's maxsize must be >= 0, not {maxsize!r}")
        self._items = deque()  # buffered values, at most _maxsize
        self._maxsize = maxsize
        self._getters = WaitQueue(self)  # parked getters; only while _items is empty
        self._putters = WaitQueue(self)  # parked putters and their values; only while _items is full
        self._closed = False

    def put_op(self, value) -> Operation:
        """The operation of putting ``value``; it completes (with None) once the value is taken or buffered.

        Raises:
            ChannelClosedError: (when performed) the queue is or gets closed.
        """
        return _PutOp(self, value)

    def get_op(self) -> Operation:
        """The operation of getting the next value; it completes with that value.

        Raises:
            EndOfChannel: (when performed) the queue is closed and empty.
        """
        return _GetOp(self)

    # put() and get() are perform() of their operation, spelt out: they are
    # the hottest calls in a channel program, and these ops have no wrap.

    async def put(self, value) -> None:
        """``await q.put(value)``: perform ``put_op(value)``.

        Raises:
            ChannelClosedError: the queue is or gets closed.
            Cancelled: the fiber was cancelled while it waited (the value was not put).
        """
        op = _PutOp(self, value)
        if op.attempt() is WOULD_BLOCK:
            await Suspend(op.block, op)

    async def get(self):
        """``await q.get()``: perform ``get_op()`` and return the value.

        Raises:
            EndOfChannel: the queue is closed and empty.
            Cancelled: the fiber was cancelled while it waited (nothing was taken).
        """
        op = _GetOp(self)
        value = op.attempt()
        if value is WOULD_BLOCK:
            value = await Suspend(op.block, op)
        return value

    def close(self) -> None:
        """Close the queue: parked putters wake with ``ChannelClosedError``, getters with ``EndOfChannel``.

        Values already buffered can still be got.  Closing twice does nothing.
        """
        if self._closed:
            return
        self._closed = True
        self._putters.fail_all(lambda: ChannelClosedError(f"{self!r} was closed"))
        self._getters.fail_all(lambda: EndOfChannel(f"{self!r} was closed"))

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    @property
    def maxsize(self) -> int:
        """How many values the buffer holds at most."""
        return self._maxsize

    def waiting(self) -> tuple:
        """``(getters, putters)``: how many fibers are parked on the queue."""
        return len(self._getters), len(self._putters)

    def __len__(self) -> int:
        """How many values are buffered."""
        return len(self._items)

    def __aiter__(self):
        return self

    async def __anext__(self):
        """``async for value in q``: get until the queue is closed and empty."""
        try:
            return await self.get()
        except EndOfChannel:
            raise StopAsyncIteration from None

    def __repr__(self) -> str:
        getters, putters = self.waiting()
        state = " closed" if self._closed else ""
        return (
            f"<{type(self).__name__}{state} {len(self._items)}/{self._maxsize}"
            f" getters={getters} putters={putters}>"
        )


class Channel(Queue):
    """An unbuffered channel: a put and a get complete together, as a rendezvous."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(0)


class _PutOp(Operation):
    __slots__ = ("q", "value")

    def __init__(self, q: Queue, value) -> None:
        self.q = q
        self.value = value

    def attempt(self):
        q = self.q
        if q._closed:
            raise ChannelClosedError(f"put on {q!r}")
        getter = q._getters.pop()
        if getter is not None:  # the buffer is empty: hand the value straight over
            getter.waiter.complete(self.value)
            return None
        items = q._items
        if len(items) < q._maxsize:
            items.append(self.value)
            return None
        return WOULD_BLOCK

    def block(self, waiter) -> None:
        self.q._putters.park(waiter, self.value)

    def __repr__(self) -> str:
        return f"put on {self.q!r}"


class _GetOp(Operation):
    __slots__ = ("q",)

    def __init__(self, q: Queue) -> None:
        self.q = q

    def attempt(self):
        q = self.q
        items = q._items
        if items:
            value = items.popleft()
            putter = q._putters.pop()
            if putter is not None:  # the buffer was full: the oldest putter takes the freed slot
                items.append(putter.value)
                putter.waiter.complete(None)
            return value
        putter = q._putters.pop()
        if putter is not None:  # a rendezvous: take straight from a putter
            putter.waiter.complete(None)
            return putter.value
        if q._closed:
            raise EndOfChannel(f"get from {q!r}")
        return WOULD_BLOCK

    def block(self, waiter) -> None:
        self.q._getters.park(waiter)

    def __repr__(self) -> str:
        return f"get from {self.q!r}"
