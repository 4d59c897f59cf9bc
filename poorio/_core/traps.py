"""The traps a fiber yields to its scheduler, and the awaitables built on them.

A fiber is a coroutine.  When it must wait it does not block the thread: it
yields a *trap* -- a tiny immutable object saying what it waits for -- out of
``_trap``, poorio's one ``@types.coroutine`` function.  The scheduler looks
the trap's class up in its dispatch table, parks the fiber or puts it back on
the ready queue, and later resumes it with a value or an exception.  Every
blocking call in poorio is a one-line ``async def`` around ``_trap``.

The traps:

``Checkpoint``
    yield to the other ready fibers (``sleep(0)``, ``checkpoint()``);
``Sleep(deadline)``
    wake at a ``time.monotonic()`` deadline;
``YieldForIo(fd, events)``
    wake when ``fd`` is ``READABLE`` or ``WRITABLE`` (the name comes from the
    "Poor Man's Event Driven IO" Lua scheduler this design started from);
``Suspend(setup, what, abortable)``
    park on a ``Suspension`` that ``setup`` hands to whoever may complete it
    (a joined fiber, a channel, a worker thread...).

Each of them is also a cancellation point: a fiber inside a cancelled scope
gets ``Cancelled`` raised instead of parking.

This module also holds the one piece of per-thread state poorio has: which
scheduler runs on this thread.
"""

from __future__ import annotations

import time
import types

from ..platform import READABLE, WRITABLE

try:
    from _thread import _local
except ImportError:  # pragma: no cover - an interpreter without the C module
    from threading import local as _local

__all__ = [
    "Checkpoint",
    "Sleep",
    "YieldForIo",
    "FdKeeper",
    "Suspend",
    "checkpoint",
    "sleep",
    "sleep_until",
    "wait_readable",
    "wait_writable",
    "suspend",
    "current_scheduler",
]

_monotonic = time.monotonic


class _ThreadState(_local):
    scheduler = None  # the Scheduler running on this thread, if any


_thread_state = _ThreadState()


def current_scheduler():
    """The scheduler running on this thread.

    Raises:
        RuntimeError: no poorio scheduler runs here (call ``poorio.run`` first).
    """
    scheduler = _thread_state.scheduler
    if scheduler is None:
        raise RuntimeError("no poorio scheduler is running in this thread (use poorio.run)")
    return scheduler


class _Trap:
    """Base of the trap classes: immutable once built."""

    __slots__ = ()

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")


class Checkpoint(_Trap):
    """Let the other ready fibers run, then continue."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "checkpoint"


_CHECKPOINT = Checkpoint()  # traps are immutable, so sleep(0) reuses one


class Sleep(_Trap):
    """Wake at ``deadline``, a ``time.monotonic()`` value."""

    __slots__ = ("deadline",)

    def __init__(self, deadline: float) -> None:
        object.__setattr__(self, "deadline", deadline)

    def __repr__(self) -> str:
        return f"sleep ({self.deadline - _monotonic():.3f}s left)"


class FdKeeper:
    """Lets an IO object's fd stay registered between its waits; the object promises ``notify_closing``.

    Registering and unregistering an fd around every wait costs two
    syscalls; keeping it registered is safe only if it is unregistered
    before it is closed (epoll and kqueue forget a closed fd by themselves,
    so a new file under the same number would go unwatched).  poorio's
    streams keep that promise in ``close``, and their finalizer hands the
    fd to ``events`` (the event set that may hold it, recorded by the
    scheduler at each wait) with ``EventSet.defer_close``.
    """

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events = None  # the EventSet the fd was last waited on in, if any


class YieldForIo(_Trap):
    """Wake when ``fd`` is ready for ``events`` (``READABLE`` or ``WRITABLE``).

    With a ``keeper`` (an ``FdKeeper``) the fd stays registered after the
    wake-up.  A trap is immutable, so an IO object may build its two once
    and yield them again and again.
    """

    __slots__ = ("fd", "events", "keeper")

    def __init__(self, fd: int, events: int, keeper: FdKeeper | None = None) -> None:
        object.__setattr__(self, "fd", fd)
        object.__setattr__(self, "events", events)
        object.__setattr__(self, "keeper", keeper)

    def __repr__(self) -> str:
        return f"{'readable' if self.events == READABLE else 'writable'} fd {self.fd}"


class Suspend(_Trap):
    """Park on a new ``Suspension``; ``setup(suspension)`` registers it with its wakers.

    ``what`` describes the wait for ``poorio.dump()``.  A suspension that is
    not ``abortable`` is not completed by cancellation: it is for the few
    waits that must finish even then (a group waiting for its children).
    """

    __slots__ = ("setup", "what", "abortable")

    def __init__(self, setup, what=None, abortable: bool = True) -> None:
        object.__setattr__(self, "setup", setup)
        object.__setattr__(self, "what", what)
        object.__setattr__(self, "abortable", abortable)

    def __repr__(self) -> str:
        return str(self.what) if self.what is not None else f"suspended ({self.setup!r})"


@types.coroutine
def _trap(trap):
    """Hand ``trap`` to the scheduler; return what it resumes the fiber with."""
    return (yield trap)


# checkpoint() and sleep() are plain functions returning _trap's awaitable,
# not async defs: a fiber parked in them then holds one generator (~180 B),
# not a coroutine around it as well (~220 B more) -- the difference between
# ~870 and ~600 bytes per fiber when 100,000 fibers all wait at once -- and
# each switch steps one frame less.  Awaiting the result is all callers do.


def checkpoint():
    """Let the other ready fibers run, and raise ``Cancelled`` if this fiber is cancelled.  Await it.

    Raises:
        Cancelled: an enclosing cancel scope (or the fiber) was cancelled.
    """
    return _trap(_CHECKPOINT)


def sleep(seconds: float):
    """Suspend this fiber for ``seconds``; ``sleep(0)`` only yields to the other ready fibers.  Await it.

    Raises:
        Cancelled: the fiber was cancelled while it slept.
        ValueError: ``seconds`` is negative or not a number (when called).
    """
    if seconds > 0:
        return _trap(Sleep(_monotonic() + seconds))
    if seconds == 0:
        return _trap(_CHECKPOINT)
    raise ValueError(f"sleep() needs a duration >= 0, not {seconds!r}")


async def sleep_until(deadline: float) -> None:
    """Suspend this fiber until ``time.monotonic()`` reaches ``deadline``.

    Raises:
        Cancelled: the fiber was cancelled while it slept.
    """
    await _trap(Sleep(deadline))


def _fd(obj) -> int:
    fd = obj if type(obj) is int else obj.fileno()
    if fd < 0:
        raise ValueError(f"not an open file descriptor: {obj!r}")
    return fd


async def wait_readable(obj) -> None:
    """Park this fiber until ``obj`` (an fd, or anything with ``fileno()``) is readable.

    Readiness includes errors and hang-ups: retry the syscall to see them.

    Raises:
        BusyResourceError: another fiber already waits to read ``obj``.
        ClosedResourceError: ``obj`` was closed (``notify_closing``) meanwhile.
        Cancelled: the fiber was cancelled while it waited.
        OSError: the kernel refused to watch the fd (real errno).
    """
    await _trap(YieldForIo(_fd(obj), READABLE))


async def wait_writable(obj) -> None:
    """Park this fiber until ``obj`` (an fd, or anything with ``fileno()``) is writable.

    Raises:
        BusyResourceError: another fiber already waits to write ``obj``.
        ClosedResourceError: ``obj`` was closed (``notify_closing``) meanwhile.
        Cancelled: the fiber was cancelled while it waited.
        OSError: the kernel refused to watch the fd (real errno).
    """
    await _trap(YieldForIo(_fd(obj), WRITABLE))


async def suspend(setup, what=None, abortable: bool = True):
    """Park this fiber on a new ``Suspension`` until someone completes it.

    ``setup(suspension)`` runs in the scheduler right after the fiber parks;
    it registers the suspension with every party that may wake it (see
    ``poorio.fiber.Suspension``).  The first to complete it wins.  If
    ``setup`` raises, the fiber is resumed with that exception.

    Returns the value the suspension was completed with.

    Raises:
        Cancelled: the fiber was cancelled (only if ``abortable``).
        BaseException: whatever the suspension was failed with.
    """
    return await _trap(Suspend(setup, what, abortable))
