"""Conditions, events, locks and semaphores for fibers, every wait an operation.

A ``Cond`` is a one-shot condition (Snabb's ``cond``): fibers wait on it
until someone calls ``signal()``; from then on every wait completes at once.

An ``Event`` is a ``Cond`` that can be re-armed: ``set()`` wakes the waiters
and keeps later waits from blocking, ``clear()`` makes them block again.

A ``Semaphore`` counts permits: ``acquire`` takes one, or waits for one;
``release`` hands a permit to the longest-waiting fiber, or puts it back.
Permits pass straight to a waiter (first come, first served), so a fiber
that keeps releasing and re-acquiring cannot starve the others.

A ``Lock`` is a semaphore of one permit whose ``release`` insists that it
was held.  Both are async context managers (``async with lock:``).

Every wait has an ``_op`` twin -- ``wait_op()``, ``acquire_op()`` -- usable
in a ``choice``: a fiber can wait for a lock *or* a timeout *or* a message.
A waiter woken some other way (cancellation, another branch of a choice)
leaves its queue at once, and is never handed a permit.
"""

from __future__ import annotations

from .ops import WOULD_BLOCK, Operation
from .waitqueue import WaitQueue

__all__ = ["Cond", "Event", "Semaphore", "Lock"]


class Cond:
    """A one-shot condition: ``wait`` blocks until ``signal()`` has been called, once and for all."""

    __slots__ = ("_signalled", "_waiters")

    def __init__(self) -> None:
        self._signalled = False
        self._waiters = WaitQueue(self)  # only while not signalled

    def wait_op(self) -> Operation:
        """The operation of waiting for the signal; it completes with None."""
        return _WaitOp(self)

    def wait(self):
        """``await cond.wait()``: perform ``wait_op()``.

        Raises:
            Cancelled: the fiber was cancelled while it waited.
        """
        return _WaitOp(self).perform()

    def signal(self) -> None:
        """Wake every waiter, and let every later wait complete at once."""
        self._signalled = True
        self._waiters.wake_all()

    def __repr__(self) -> str:
        state = "signalled" if self._signalled else f"waiters={len(self._waiters)}"
        return f"<{type(self).__name__} {state}>"


class Event(Cond):
    """A flag fibers can wait for: ``set()`` wakes them, ``clear()`` re-arms it."""

    __slots__ = ()

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        self.signal()

    def clear(self) -> None:
        """Reset the flag: later waits block until the next ``set()``."""
        self._signalled = False

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._signalled


class _WaitOp(Operation):
    __slots__ = ("cond",)

    def __init__(self, cond: Cond) -> None:
        self.cond = cond

    def attempt(self):
        return None if self.cond._signalled else WOULD_BLOCK

    def block(self, waiter) -> None:
        self.cond._waiters.park(waiter)

    def __repr__(self) -> str:
        return f"wait on {self.cond!r}"


class Semaphore:
    """A count of permits; ``acquire`` waits while there are none, ``release`` gives one back."""

    __slots__ = ("_value", "_max", "_waiters")

    def __init__(self, value: int = 1, max_value: int | None = None) -> None:
        """A semaphore with ``value`` permits, and at most ``max_value`` once released (None: no bound).

        Raises:
            ValueError: ``value`` is negative or above ``max_value``.
        """
        if value < 0 or (max_value is not None and value > max_value):
            raise ValueError(f"a semaphore needs 0 <= value <= max_value, not {value!r}, {max_value!r}")
        self._value = value  # free permits; 0 whenever fibers wait
        self._max = max_value
        self._waiters = WaitQueue(self)  # the fibers waiting for a permit

    def acquire_op(self) -> Operation:
        """The operation of taking a permit; it completes with None."""
        return _AcquireOp(self)

    def acquire(self):
        """``await sem.acquire()``: perform ``acquire_op()``.

        Raises:
            Cancelled: the fiber was cancelled while it waited (it holds no permit).
        """
        return _AcquireOp(self).perform()

    def release(self) -> None:
        """Give a permit back: to the longest-waiting fiber if there is one.

        Raises:
            ValueError: the release would exceed ``max_value``.
        """
        waiter = self._waiters.pop()
        if waiter is not None:
            waiter.waiter.complete(None)  # the permit passes straight to it
            return
        if self._max is not None and self._value >= self._max:
            raise ValueError(f"{self!r} released more often than acquired")
        self._value += 1

    @property
    def value(self) -> int:
        """How many permits are free."""
        return self._value

    async def __aenter__(self) -> None:
        await _AcquireOp(self).perform()

    async def __aexit__(self, *exc_info) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} value={self._value} waiters={len(self._waiters)}>"


class Lock(Semaphore):
    """A mutual-exclusion lock for fibers, handed to waiters in arrival order."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(1, 1)

    def locked(self) -> bool:
        """Whether some fiber holds the lock."""
        return self._value == 0

    def release(self) -> None:
        """Release the lock, handing it to the longest-waiting fiber if there is one.

        Raises:
            RuntimeError: the lock is not held.
        """
        if self._value:
            raise RuntimeError("release() of a Lock that is not held")
        super().release()

    def __repr__(self) -> str:
        state = "locked" if self._value == 0 else "unlocked"
        return f"<Lock {state} waiters={len(self._waiters)}>"


class _AcquireOp(Operation):
    __slots__ = ("sem",)

    def __init__(self, sem: Semaphore) -> None:
        self.sem = sem

    def attempt(self):
        sem = self.sem
        if sem._value > 0:
            sem._value -= 1
            return None
        return WOULD_BLOCK

    def block(self, waiter) -> None:
        self.sem._waiters.park(waiter)

    def __repr__(self) -> str:
        return f"acquire {self.sem!r}"
