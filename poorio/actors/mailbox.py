"""A bounded mailbox between threads: fibers of any scheduler put, the fibers of one scheduler get.

Fiber primitives (``Channel``, ``Queue``...) belong to one scheduler.  An
actor's inbox cannot: its senders run in other threads, each with a
scheduler of its own.  A ``Mailbox`` is the one structure actors share
across threads, and everything it does across them goes through the
thread-safe routes only -- a lock around its state, and
``Scheduler.call_threadsafe`` to wake a fiber of another scheduler.

The owner is the scheduler that made it; only its fibers get.  Anyone puts:

* A put finds room (and no earlier putter waiting): the item is buffered
  under the lock, and if an owner's fiber is parked in a get, the owner is
  told to *pump* -- hand buffered items to its parked getters, in its own
  thread, where a waiter's ``done`` can be trusted.
* A put finds the box full: the putter parks, queued oldest first.  Each
  get that frees a slot pops the oldest queued putter and asks *its*
  scheduler to *retry*: in the putter's own thread, if its waiter is still
  waiting and the slot is still free, the item goes in and the waiter
  completes in the same step; if it stopped waiting (cancelled, another
  branch of a choice won), the slot is offered to the next putter.  So a
  value is never both put and not put, even in a ``choice`` with a timeout.

Items from one putting fiber stay in order; a full box makes its putters
wait (back-pressure) rather than grow.  ``close(make_error)`` fails every
waiting fiber and every later put or empty get with ``make_error()``, and
drops what is buffered.

What this module does not do: pick the items' type (actors store encoded
messages), or let two schedulers get from one box.
"""

from __future__ import annotations

from _thread import allocate_lock
from collections import deque

from .._core.traps import current_scheduler, suspend
from ..errors import ClosedResourceError
from ..ops import WOULD_BLOCK, Operation

__all__ = ["Mailbox"]


class _PutEntry:
    """A parked putter: its scheduler, its waiter and the item it offers."""

    __slots__ = ("sched", "waiter", "item")

    def __init__(self, sched, waiter, item) -> None:
        self.sched = sched
        self.waiter = waiter
        self.item = item


class Mailbox:
    """At most ``capacity`` items; ``put_op``/``put`` from any fiber, ``get_op``/``get`` from the owner's.

    Raises:
        RuntimeError: (when made) no scheduler runs in this thread.
        ValueError: ``capacity`` is below 1.
    """

    __slots__ = ("_owner", "_lock", "_items", "_capacity", "_getters", "_putters", "_error", "_pump_queued", "name")

    def __init__(self, capacity: int, name: str = "mailbox") -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"a mailbox needs a capacity >= 1, not {capacity!r}")
        self._owner = current_scheduler()
        self._lock = allocate_lock()  # guards every field below
        self._items = deque()
        self._capacity = capacity
        self._getters = deque()  # waiters of the owner's parked getters (owner thread only completes them)
        self._putters = deque()  # _PutEntry of each parked putter, oldest first
        self._error = None  # once closed: makes the error a put or an empty get raises
        self._pump_queued = False  # a _pump is on its way to the owner's loop
        self.name = name

    # -- the operations -------------------------------------------------------------------

    def put_op(self, item) -> Operation:
        """The operation of putting ``item``; it completes (with None) once the item is in the box.

        Raises:
            BaseException: (when performed) ``make_error()`` of a closed box.
        """
        return _PutOp(self, item)

    def get_op(self) -> Operation:
        """The operation of taking the oldest item; only the owner's fibers may perform it.

        Raises:
            RuntimeError: (when performed) in another scheduler's fiber.
            BaseException: (when performed) ``make_error()`` of a closed, empty box.
        """
        return _GetOp(self)

    async def put(self, item) -> None:
        """``await box.put(item)``: perform ``put_op(item)``."""
        op = _PutOp(self, item)
        if op.attempt() is WOULD_BLOCK:
            await _perform_blocking(op)

    async def get(self):
        """``await box.get()``: perform ``get_op()`` and return the item."""
        op = _GetOp(self)
        item = op.attempt()
        if item is WOULD_BLOCK:
            item = await _perform_blocking(op)
        return item

    def try_put(self, item) -> bool:
        """Put ``item`` if there is room now (and no putter waits); return whether it went in.  Never waits.

        Raises:
            RuntimeError: no scheduler runs in this thread.
            BaseException: ``make_error()`` of a closed box.
        """
        return self._try_put(item, current_scheduler())

    def try_get(self):
        """The oldest item, or ``WOULD_BLOCK`` if there is none; never waits (owner's fibers only).

        Raises:
            RuntimeError: in another scheduler's fiber.
            BaseException: ``make_error()`` of a closed, empty box.
        """
        self._check_owner()
        return self._try_get()

    def close(self, make_error) -> None:
        """Fail waiting fibers, later puts and empty gets with ``make_error()``; drop buffered items.  Any thread."""
        with self._lock:
            if self._error is not None:
                return
            self._error = make_error
            getters = list(self._getters)
            putters = list(self._putters)
            self._getters.clear()
            self._putters.clear()
            self._items.clear()
        for waiter in getters:
            _fail_in(self._owner, waiter, make_error)
        for entry in putters:
            _fail_in(entry.sched, entry.waiter, make_error)

    @property
    def closed(self) -> bool:
        return self._error is not None

    def __len__(self) -> int:
        """How many items are buffered."""
        return len(self._items)

    def __repr__(self) -> str:
        state = " closed" if self._error is not None else ""
        return (
            f"<Mailbox {self.name!r}{state} {len(self._items)}/{self._capacity}"
            f" getters={len(self._getters)} putters={len(self._putters)}>"
        )

    # -- putting: any thread --------------------------------------------------------------

    def _try_put(self, item, sched) -> bool:
        with self._lock:
            error = self._error
            if error is None:
                if len(self._items) >= self._capacity or self._putters:
                    return False
                self._items.append(item)
                wake = self._wants_pump()
        if error is not None:
            raise error()
        if wake:
            self._wake_owner(sched)
        return True

    def _block_put(self, item, waiter, sched) -> None:
        with self._lock:
            error = self._error
            parked = False
            if error is None:
                if len(self._items) < self._capacity and not self._putters:  # room came meanwhile
                    self._items.append(item)
                    wake = self._wants_pump()
                else:
                    entry = _PutEntry(sched, waiter, item)
                    self._putters.append(entry)
                    parked = True
        if error is not None:
            waiter.fail(error())
        elif parked:
            if sched is not self._owner:
                waiter.expect_thread()  # the owner, in another thread, frees the slot
            waiter.on_wake(lambda: self._leave(self._putters, entry))
        else:
            waiter.complete(None)
            if wake:
                self._wake_owner(sched)

    def _wants_pump(self) -> bool:
        """Under the lock, after buffering: whether the owner must be told to pump."""
        if self._getters and not self._pump_queued:
            self._pump_queued = True
            return True
        return False

    def _wake_owner(self, sched) -> None:
        if sched is self._owner:
            self._pump()
            return
        try:
            self._owner.call_threadsafe(self._pump)
        except ClosedResourceError:
            pass  # the owner has finished; closing the box at its end failed the rest

    def _retry(self, entry: _PutEntry) -> None:
        """A slot was freed for ``entry`` (in the putter's thread): put its item now, or pass the slot on."""
        waiter = entry.waiter
        if waiter.done:
            self._slot_freed()
            return
        with self._lock:
            error = self._error
            if error is None:
                if len(self._items) >= self._capacity:
                    self._putters.appendleft(entry)  # a fresh putter took the slot first: wait for the next
                    return
                self._items.append(entry.item)
                wake = self._wants_pump()
        if error is not None:
            waiter.fail(error())
            return
        waiter.complete(None)
        if wake:
            self._wake_owner(entry.sched)

    def _slot_freed(self) -> None:
        """Offer a free slot to the oldest parked putter, in its own thread."""
        while True:
            with self._lock:
                if not self._putters:
                    return
                entry = self._putters.popleft()
            try:
                entry.sched.call_threadsafe(self._retry, entry)
                return
            except ClosedResourceError:
                continue  # that putter's scheduler has finished: the next one gets the slot

    # -- getting: the owner's thread --------------------------------------------------------

    def _check_owner(self) -> None:
        if current_scheduler() is not self._owner:
            raise RuntimeError(f"{self!r} belongs to another scheduler: only its owner's fibers may get from it")

    def _try_get(self):
        with self._lock:
            if self._items:
                item = self._items.popleft()
                freed = bool(self._putters)
            elif self._error is not None:
                raise self._error()
            else:
                return WOULD_BLOCK
        if freed:
            self._slot_freed()
        return item

    def _block_get(self, waiter) -> None:
        with self._lock:
            error = self._error
            item = WOULD_BLOCK
            if self._items:  # put by another thread since attempt()
                item = self._items.popleft()
                freed = bool(self._putters)
            elif error is None:
                self._getters.append(waiter)
        if item is not WOULD_BLOCK:
            waiter.complete(item)
            if freed:
                self._slot_freed()
        elif error is not None:
            waiter.fail(error())
        else:
            waiter.expect_thread()  # any thread may put
            waiter.on_wake(lambda: self._leave(self._getters, waiter))

    def _pump(self) -> None:
        """Hand buffered items to the owner's parked getters (owner thread)."""
        with self._lock:
            self._pump_queued = False
        while True:
            with self._lock:
                getters = self._getters
                while getters and getters[0].done:
                    getters.popleft()
                if not getters or not self._items:
                    return
                waiter = getters.popleft()
                item = self._items.popleft()
                freed = bool(self._putters)
            waiter.complete(item)
            if freed:
                self._slot_freed()

    def _leave(self, queue: deque, entry) -> None:
        """A parked fiber woke some other way: take it out of ``queue`` if it is still there."""
        with self._lock:
            try:
                queue.remove(entry)
            except ValueError:
                pass  # already popped by a partner


class _PutOp(Operation):
    __slots__ = ("box", "item", "sched")

    def __init__(self, box: Mailbox, item) -> None:
        self.box = box
        self.item = item
        self.sched = None

    def attempt(self):
        self.sched = current_scheduler()
        return None if self.box._try_put(self.item, self.sched) else WOULD_BLOCK

    def block(self, waiter) -> None:
        self.box._block_put(self.item, waiter, self.sched)

    def __repr__(self) -> str:
        return f"put on {self.box!r}"


class _GetOp(Operation):
    __slots__ = ("box",)

    def __init__(self, box: Mailbox) -> None:
        self.box = box

    def attempt(self):
        self.box._check_owner()
        return self.box._try_get()

    def block(self, waiter) -> None:
        self.box._block_get(waiter)

    def __repr__(self) -> str:
        return f"get from {self.box!r}"


async def _perform_blocking(op: Operation):
    return await suspend(op.block, op)


def _fail_in(sched, waiter, make_error) -> None:
    """Fail ``waiter`` in ``sched``'s thread (it may be this one); nothing if that scheduler is gone."""
    try:
        current = current_scheduler()
    except RuntimeError:
        current = None
    if current is sched:
        waiter.fail(make_error())
        return
    try:
        sched.call_threadsafe(lambda: waiter.fail(make_error()))
    except ClosedResourceError:
        pass
