"""Concurrent ML operations: first-class synchronisations that can be tried, blocked on, wrapped and chosen between.

An *operation* represents the potential for synchronisation with some
external party -- a channel partner, a timer, the kernel, a fiber that ends.
It does nothing until it is performed: ``await op.perform()`` first *tries*
it without blocking and suspends the fiber only when it must.  An operation
is a value: build it once, wrap it, put it in a list, choose between lists
built at run time.  (After Reppy's Concurrent ML as Andy Wingo implemented it
in Snabb's ``fibers``, ported to Lua as lua-fibers.)

A *base operation* (``Operation``) is three methods:

``attempt()``
    complete now if the operation can, returning its raw value, or return
    ``WOULD_BLOCK``; it never suspends;
``block(waiter)``
    register ``waiter`` with every party that could complete the operation
    later; that party calls ``waiter.complete(value)`` (or ``fail(error)``)
    if ``waiter.done`` is still false, and must do so in the same step as it
    gives or takes anything, so the hand-over is atomic;
``post(value)``
    turn the raw value into the operation's result (``wrap`` composes here).

A *choice* (``choice(*ops)``) performs exactly one of its operations.  It is
a flat list of base operations -- nested choices are flattened -- tried one
after another from a random starting point, so no ready branch starves.  If
none is ready, the fiber parks on ONE ``Suspension`` registered with every
branch, each through a ``_Branch`` that tags the value with the branch's
index; the first party to complete it wins, and the losers find it ``done``.
Every registration also hooks the suspension's ``on_wake`` to take itself
out, so a cancelled fiber, or a choice that another branch won, leaves
nothing behind.

A *waiter* is what ``block`` is handed: the fiber's ``Suspension`` itself
for a lone operation, or a ``_Branch`` for one branch of a choice.  Both
offer ``done``, ``fiber``, ``scheduler``, ``complete(value)``,
``fail(error)``, ``on_wake(callback)``, ``watch_fd(fd, direction)``,
``watch_deadline(deadline)`` and ``expect_thread()``.  Objects that fibers
wait on queue their waiters in a ``WaitQueue``.
"""

from __future__ import annotations

import math
import os
from time import monotonic as _monotonic

from ._core.traps import Suspend, check_seconds, fd_of
from .platform import READABLE, WRITABLE
from .waitqueue import WaitQueue

# Where a choice starts trying its branches.  Fairness needs no statistical
# quality, so a 32-bit xorshift (Marsaglia, 2003) seeded once from the OS
# does, and ``import random`` (a fifth of poorio's import time) is avoided.
# Two threads racing on the state only get a less random start.
_xorshift = int.from_bytes(os.urandom(4), "little") | 1  # never 0: xorshift would stay 0


def _random_below(n: int) -> int:
    """A pseudo-random int in ``range(n)``."""
    global _xorshift
    x = _xorshift
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    _xorshift = x
    return x % n

__all__ = [
    "WOULD_BLOCK",
    "Operation",
    "WaitQueue",
    "choice",
    "always",
    "never",
    "sleep_op",
    "sleep_until_op",
    "timeout_op",
    "readable_op",
    "writable_op",
    "join_op",
    # defined in poorio.channel and poorio.sync, re-exported here (see __getattr__)
    "Channel",
    "Queue",
    "Cond",
    "Event",
    "Lock",
    "Semaphore",
]


class _WouldBlock:
    """The type of ``WOULD_BLOCK``: what ``attempt()`` returns when it cannot complete now."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "WOULD_BLOCK"


WOULD_BLOCK = _WouldBlock()


class Operation:
    """A base operation: ``attempt``, ``block`` and ``post`` (see the module docstring).

    Subclass it and define ``attempt`` and ``block`` to make a new kind of
    operation; ``post`` defaults to returning the raw value.
    """

    __slots__ = ()

    def attempt(self):
        """Complete now and return the raw value, or return ``WOULD_BLOCK``."""
        return WOULD_BLOCK

    def block(self, waiter) -> None:
        """Register ``waiter`` with whoever may complete this operation later."""

    def post(self, value):
        """Turn the raw value into the operation's result."""
        return value

    async def perform(self):
        """Synchronise: complete now if possible, else suspend until a partner completes it.

        Returns the operation's result (after every ``wrap``).

        Raises:
            Cancelled: the fiber was cancelled while it waited.
            BaseException: what the operation or a wrap function raised
                (``EndOfChannel``, ``ChannelClosedError``...).
        """
        value = self.attempt()
        if value is WOULD_BLOCK:
            value = await Suspend(self.block, self)
        return self.post(value)

    def wrap(self, fn) -> Operation:
        """An operation like this one whose result is ``fn(result)``.

        ``fn`` is a plain function, called in the performing fiber.
        """
        return _Wrapped(self, fn)

    def _branches(self) -> tuple:
        """The base operations this one chooses between: itself."""
        return (self,)


class _Wrapped(Operation):
    """A base operation with one more function applied to its result."""

    __slots__ = ("inner", "fn")

    def __init__(self, inner: Operation, fn) -> None:
        self.inner = inner
        self.fn = fn

    def attempt(self):
        return self.inner.attempt()

    def block(self, waiter) -> None:
        self.inner.block(waiter)

    def post(self, value):
        return self.fn(self.inner.post(value))

    def __repr__(self) -> str:
        return f"{self.inner!r} wrapped"


class _Choice(Operation):
    """Exactly one of several base operations: the first that can, or the first to complete."""

    __slots__ = ("ops",)

    def __init__(self, ops: tuple) -> None:
        self.ops = ops

    async def perform(self):
        """Perform exactly one branch: a ready one tried from a random start, else the first to complete.

        Raises:
            Cancelled: the fiber was cancelled while it waited (no branch completed).
            BaseException: what the winning branch or its wrap raised.
        """
        ops = self.ops
        n = len(ops)
        i = _random_below(n)
        for _ in range(n):
            op = ops[i]
            value = op.attempt()
            if value is not WOULD_BLOCK:
                return op.post(value)
            i = i + 1 if i + 1 < n else 0
        index, value = await Suspend(self._block_all, self)
        return ops[index].post(value)

    def _block_all(self, susp) -> None:
        # Runs in the scheduler right after the fiber parked: nothing else ran
        # since every attempt() failed, so no branch can have become ready.
        for index, op in enumerate(self.ops):
            op.block(_Branch(susp, index))
            if susp.done:  # a user-defined block() completed it: stop registering
                return

    def wrap(self, fn) -> Operation:
        """A choice between the same branches, each with ``fn`` applied to its result."""
        return _Choice(tuple(_Wrapped(op, fn) for op in self.ops))

    def _branches(self) -> tuple:
        return self.ops

    def __repr__(self) -> str:
        return "choice(" + ", ".join(map(repr, self.ops)) + ")"


class _Branch:
    """One branch's view of a choice's shared suspension: completes it tagged with the branch index."""

    __slots__ = ("susp", "index")

    def __init__(self, susp, index: int) -> None:
        self.susp = susp
        self.index = index

    @property
    def done(self) -> bool:
        return self.susp.done

    @property
    def fiber(self):
        return self.susp.fiber

    @property
    def scheduler(self):
        return self.susp.scheduler

    def complete(self, value=None) -> bool:
        return self.susp.complete((self.index, value))

    def fail(self, error: BaseException) -> bool:
        return self.susp.fail(error)

    def on_wake(self, callback) -> None:
        self.susp.on_wake(callback)

    def watch_fd(self, fd: int, direction: int) -> None:
        self.susp.watch_fd(fd, direction, (self.index, None))

    def watch_deadline(self, deadline: float) -> None:
        self.susp.watch_deadline(deadline, (self.index, None))

    def expect_thread(self) -> None:
        self.susp.expect_thread()


def choice(*ops: Operation) -> Operation:
    """An operation that performs exactly one of ``ops``; nested choices are flattened.

    Ready branches are tried from a random start, so over many performs
    every ready branch wins.  ``choice()`` of nothing never completes.

    Raises:
        TypeError: an argument is not an ``Operation``.
    """
    flat = []
    for op in ops:
        if not isinstance(op, Operation):
            raise TypeError(f"choice() takes operations, not {op!r}")
        flat.extend(op._branches())
    if len(flat) == 1:
        return flat[0]
    if not flat:
        return _Never()
    return _Choice(tuple(flat))


class _Always(Operation):
    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value

    def attempt(self):
        return self.value

    def __repr__(self) -> str:
        return f"always({self.value!r})"


class _Never(Operation):
    __slots__ = ()

    def _branches(self) -> tuple:
        return ()  # a choice never picks it, so leave it out

    def __repr__(self) -> str:
        return "never()"


def always(value=None) -> Operation:
    """An operation that is always ready and returns ``value`` (a choice's default branch)."""
    return _Always(value)


def never() -> Operation:
    """An operation that never completes (alone, it parks until cancelled)."""
    return _Never()


class _SleepOp(Operation):
    """Ready ``seconds`` after it starts waiting; each perform waits afresh."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def attempt(self):
        return None if self.seconds <= 0 else WOULD_BLOCK

    def block(self, waiter) -> None:
        if self.seconds != math.inf:  # forever needs no timer
            waiter.watch_deadline(_monotonic() + self.seconds)

    def __repr__(self) -> str:
        return f"sleep_op({self.seconds!r})"


class _DeadlineOp(Operation):
    """Ready once ``time.monotonic()`` reaches ``deadline``."""

    __slots__ = ("deadline",)

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def attempt(self):
        return None if self.deadline <= _monotonic() else WOULD_BLOCK

    def block(self, waiter) -> None:
        if self.deadline != math.inf:
            waiter.watch_deadline(self.deadline)

    def __repr__(self) -> str:
        return f"deadline in {self.deadline - _monotonic():.3f}s"


def _check_seconds(seconds: float, what: str) -> float:
    seconds = check_seconds(seconds, what)
    if seconds < 0:
        raise ValueError(f"{what} needs a duration >= 0, not {seconds!r}")
    return float(seconds)


def sleep_op(seconds: float) -> Operation:
    """An operation that completes (with None) ``seconds`` after each perform starts to wait.

    ``sleep_op(0)`` is ready at once without yielding.

    Raises:
        ValueError: ``seconds`` is negative or NaN.
        TypeError: ``seconds`` is not a number.
    """
    return _SleepOp(_check_seconds(seconds, "sleep_op()"))


def sleep_until_op(deadline: float) -> Operation:
    """An operation that completes (with None) once ``time.monotonic()`` reaches ``deadline``."""
    return _DeadlineOp(float(check_seconds(deadline, "sleep_until_op()'s deadline")))


def timeout_op(seconds: float) -> Operation:
    """An operation that becomes ready ``seconds`` from now (with None) and stays ready.

    The deadline is fixed when the operation is made, so one ``timeout_op``
    reused across a loop of choices bounds the whole loop.

    Raises:
        ValueError: ``seconds`` is negative or NaN.
        TypeError: ``seconds`` is not a number.
    """
    return _DeadlineOp(_monotonic() + _check_seconds(seconds, "timeout_op()"))


class _IoOp(Operation):
    """Ready when the kernel reports the fd ready in one direction."""

    __slots__ = ("fd", "direction")

    def __init__(self, fd: int, direction: int) -> None:
        self.fd = fd
        self.direction = direction  # READABLE or WRITABLE

    def attempt(self):
        return WOULD_BLOCK  # readiness is only known by asking the kernel, i.e. by blocking

    def block(self, waiter) -> None:
        waiter.watch_fd(self.fd, self.direction)

    def __repr__(self) -> str:
        return f"{'readable' if self.direction == READABLE else 'writable'}_op(fd {self.fd})"


def readable_op(obj) -> Operation:
    """An operation that completes (with None) when ``obj`` (an fd or ``fileno()`` object) is readable.

    Raises:
        ValueError: ``obj`` is not an open fd.
        BusyResourceError: (when performed) another fiber already waits to read it.
        ClosedResourceError: (when performed) it was closed (``notify_closing``) meanwhile.
    """
    return _IoOp(fd_of(obj, "readable_op()'s argument"), READABLE)


def writable_op(obj) -> Operation:
    """An operation that completes (with None) when ``obj`` (an fd or ``fileno()`` object) is writable.

    Raises:
        ValueError: ``obj`` is not an open fd.
        BusyResourceError: (when performed) another fiber already waits to write it.
        ClosedResourceError: (when performed) it was closed (``notify_closing``) meanwhile.
    """
    return _IoOp(fd_of(obj, "writable_op()'s argument"), WRITABLE)


class _JoinOp(Operation):
    """Ready when a fiber has finished; its result is the fiber's."""

    __slots__ = ("fiber",)

    def __init__(self, fiber) -> None:
        self.fiber = fiber

    def attempt(self):
        return None if self.fiber.done() else WOULD_BLOCK

    def block(self, waiter) -> None:
        fiber = self.fiber
        fiber.add_joiner(waiter)  # refuses a fiber's own join
        waiter.on_wake(lambda: fiber.remove_joiner(waiter))

    def post(self, value):
        return self.fiber.result()

    def __repr__(self) -> str:
        return f"join_op({self.fiber!r})"


def join_op(fiber) -> Operation:
    """An operation that completes when ``fiber`` finishes, with its result.

    Performing it re-raises the fiber's exception (``Cancelled`` if it was
    cancelled) like ``fiber.join()``.

    Raises:
        RuntimeError: (when performed) a fiber tried to join itself.
    """
    return _JoinOp(fiber)


# Channel, Queue and the sync primitives build on this module, so importing
# them here at import time would be circular; these names alone resolve
# lazily (PEP 562), each to the class in its own module.
_ELSEWHERE = {
    "Channel": "channel",
    "Queue": "channel",
    "Cond": "sync",
    "Event": "sync",
    "Lock": "sync",
    "Semaphore": "sync",
}


def __getattr__(name: str):
    module = _ELSEWHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'poorio.ops' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"poorio.{module}"), name)


def __dir__() -> list:
    return sorted(set(globals()) | set(_ELSEWHERE))

