"""The kernel: fibers, the ready queue, traps, cancel scopes, groups and ``run()``.

This package is the *dispatch* layer: it steps fibers, parks them on the
event layer (``poorio.events``) and resumes them from what it reports.  Its
modules share internals freely; nothing outside the package touches them.
The functions below act on the scheduler running in this thread; the layers
above import them from here, and users from ``poorio``.
"""

from __future__ import annotations

from .fiber import Fiber
from .scheduler import Scheduler, SchedulerStatistics
from .traps import _thread_state, current_scheduler

__all__ = [
    "run", "spawn", "current", "notify_closing", "room", "wait_for_room", "stats", "dump", "fibers",
]  # fmt: skip


def run(main, *args, backend: str | None = None, capacity: int | None = None):
    """Run ``main(*args)`` in a new fiber on a new scheduler; return its result.

    ``backend`` names the readiness backend (default: the best one here);
    ``capacity`` is how many fds can be watched at once (default: the
    process's fd limit).  ``main`` runs in a
    copy of the caller's ``contextvars`` context.

    Raises:
        DeadlockError: every fiber was blocked with nothing left to wake it.
        RuntimeError: called from inside a running scheduler.
        BaseException: whatever ``main`` raised.
    """
    if _thread_state.scheduler is not None:
        raise RuntimeError("poorio.run() cannot be called from inside a running scheduler")
    with Scheduler(backend, capacity) as scheduler:
        return scheduler.run(main, *args)


def spawn(fn, *args, name: str | None = None) -> Fiber:
    """Start ``fn(*args)`` as a new fiber of the current scheduler; returns the ``Fiber``.

    The fiber runs in a copy of the spawner's ``contextvars`` context.

    Raises:
        RuntimeError: no scheduler runs in this thread.
        TypeError: ``fn(*args)`` did not return an awaitable.
    """
    return current_scheduler().spawn(fn, *args, name=name)


def current() -> Fiber:
    """The fiber that is running now.

    Raises:
        RuntimeError: not called from inside a poorio fiber.
    """
    fiber = current_scheduler().current
    if fiber is None:
        raise RuntimeError("not inside a poorio fiber")
    return fiber


def notify_closing(obj) -> None:
    """Wake every fiber waiting on ``obj``'s fd with ``ClosedResourceError``; call before closing it.

    Raises:
        RuntimeError: no scheduler runs in this thread.
    """
    current_scheduler().notify_closing(obj)


def room() -> int:
    """How many more fds the current scheduler's fibers can start waiting on (see ``Scheduler.room``).

    Raises:
        RuntimeError: no scheduler runs in this thread.
    """
    return current_scheduler().room()


async def wait_for_room(count: int = 1) -> None:
    """Park this fiber until the current scheduler's pool has room for ``count`` more fds.

    Raises:
        RuntimeError: no scheduler runs in this thread.
        ValueError: ``count`` is not an int from 1 to the capacity.
        Cancelled: the fiber was cancelled while it waited.
    """
    await current_scheduler().wait_for_room(count)


def stats() -> SchedulerStatistics:
    """Statistics of the current scheduler (see ``SchedulerStatistics``)."""
    return current_scheduler().statistics()


def dump() -> str:
    """Every live fiber of the current scheduler and what it is doing or waiting on."""
    return current_scheduler().dump()


def fibers() -> tuple:
    """A ``FiberInfo`` snapshot of every live fiber of the current scheduler."""
    return current_scheduler().fibers()
