"""The traps a fiber yields to its scheduler, and the awaitables built on them.

A fiber is a coroutine.  When it must wait it does not block the thread: it
awaits a *trap* -- a tiny object, never changed once built, saying what it waits for.  A
trap's ``__await__`` is poorio's one generator that yields to the
scheduler: it hands the trap over and returns whatever the fiber is resumed
with.  The scheduler looks the trap's class up, parks the fiber or puts it
back on the ready queue, and later resumes it with a value or an exception.

The traps:

``Checkpoint``
    yield to the other ready fibers (``sleep(0)``, ``checkpoint()``);
``Sleep(deadline)``
    wake at a ``time.monotonic()`` deadline;
``YieldForIo(fd, events, kept=None)``
    wake when ``fd`` is ``READABLE`` or ``WRITABLE`` (the name comes from the
    "Poor Man's Event Driven IO" Lua scheduler this design started from);
    with a ``KeptFd`` the registration outlives the wait (an IO object's
    fd, see ``poorio.events.notifier``);
``Suspend(setup, what, abortable)``
    park on a ``Suspension`` that ``setup`` hands to whoever may complete it
    (a joined fiber, a channel, a worker thread...).

Each of them is also a cancellation point: a fiber inside a cancelled scope
gets ``Cancelled`` raised instead of parking.  A trap is never changed once
built, so an IO object builds its two ``YieldForIo`` once and awaits them
again and again.

This module also holds the one piece of per-thread state poorio has: which
scheduler runs on this thread.
"""

from __future__ import annotations

import math
import time
from _weakref import ref as _weak

from ..platform import READABLE, WRITABLE, fileno

try:
    from _thread import _local
except ImportError:  # pragma: no cover - an interpreter without the C module
    from threading import local as _local

__all__ = [
    "Trap",
    "Checkpoint",
    "Sleep",
    "YieldForIo",
    "Suspend",
    "checkpoint",
    "sleep",
    "sleep_until",
    "wait_readable",
    "wait_writable",
    "suspend",
    "current_scheduler",
    "running_scheduler",
    "fd_of",
    "check_seconds",
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


def running_scheduler():
    """The scheduler running on this thread, or None."""
    return _thread_state.scheduler


class Trap:
    """Base of the trap classes; awaiting one hands it to the scheduler.

    A trap is never changed once built -- an IO object awaits the same two
    again and again, and the scheduler keeps the one a fiber parked with.
    That is a rule of the code, not enforced at run time: an ``__setattr__``
    that refused changes made building a trap two to three times slower,
    and a sleep or a raw wait builds one each time.
    """

    __slots__ = ()

    def __await__(self):
        return (yield self)


class Checkpoint(Trap):
    """Let the other ready fibers run, then continue."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "checkpoint"


_CHECKPOINT = Checkpoint()  # traps never change, so sleep(0) reuses one


class Sleep(Trap):
    """Wake at ``deadline``, a ``time.monotonic()`` value."""

    __slots__ = ("deadline",)

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __repr__(self) -> str:
        if self.deadline == math.inf:
            return "sleep (forever)"
        return f"sleep ({self.deadline - _monotonic():.3f}s left)"


class YieldForIo(Trap):
    """Wake when ``fd`` is ready for ``events`` (``READABLE`` or ``WRITABLE``).

    With ``kept`` (a ``poorio.events.KeptFd``) the fd stays registered after
    the wake-up; its owner promises ``notify_closing`` before closing it.
    """

    __slots__ = ("fd", "events", "kept")

    def __init__(self, fd: int, events: int, kept=None) -> None:
        self.fd = fd
        self.events = events
        self.kept = kept

    def __repr__(self) -> str:
        return f"{'readable' if self.events == READABLE else 'writable'} fd {self.fd}"


class Suspend(Trap):
    """Park on a new ``Suspension``; ``setup(suspension)`` registers it with its wakers.

    ``what`` describes the wait for ``poorio.dump()`` (its ``str`` is shown;
    it must not include a fiber's ``repr``, which may show this very wait).  A
    suspension that is not ``abortable`` is not completed by cancellation:
    it is for the few waits that must finish even then (a group waiting for
    its children).
    """

    __slots__ = ("setup", "what", "abortable")

    def __init__(self, setup, what=None, abortable: bool = True) -> None:
        self.setup = setup
        self.what = what
        self.abortable = abortable

    def __repr__(self) -> str:
        return str(self.what) if self.what is not None else "suspended"


# The awaitables below are plain functions returning a trap, not async defs:
# a fiber parked in them then holds one generator (the trap's __await__),
# not a coroutine around it as well -- ~200 bytes less per waiting fiber --
# and each switch steps one frame less.  Awaiting the result is all callers do.


def check_seconds(value, what: str) -> float:
    """``value`` as seconds (a real number, not NaN); ``what`` names it in the error.

    Raises:
        TypeError: not an int or float (bool excluded).
        ValueError: NaN.
    """
    if value.__class__ is not float and value.__class__ is not int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{what} must be a number of seconds, not {value!r}")
    if value != value:
        raise ValueError(f"{what} must be a number of seconds, not NaN")
    return value


def checkpoint() -> Checkpoint:
    """Let the other ready fibers run, and raise ``Cancelled`` if this fiber is cancelled.  Await it.

    Raises:
        Cancelled: an enclosing cancel scope (or the fiber) was cancelled.
    """
    return _CHECKPOINT


def sleep(seconds: float) -> Trap:
    """Suspend this fiber for ``seconds``; ``sleep(0)`` only yields to the other ready fibers.  Await it.

    Raises:
        Cancelled: the fiber was cancelled while it slept.
        ValueError: ``seconds`` is negative or NaN (when called).
        TypeError: ``seconds`` is not a number (when called).
    """
    if seconds.__class__ is float or seconds.__class__ is int:  # the common case, checked cheaply
        if seconds > 0:
            return Sleep(_monotonic() + seconds)
        if seconds == 0:
            return _CHECKPOINT
    seconds = check_seconds(seconds, "sleep()'s duration")
    if seconds > 0:
        return Sleep(_monotonic() + seconds)
    if seconds == 0:
        return _CHECKPOINT
    raise ValueError(f"sleep() needs a duration >= 0, not {seconds!r}")


def sleep_until(deadline: float) -> Sleep:
    """Suspend this fiber until ``time.monotonic()`` reaches ``deadline``.  Await it.

    Raises:
        Cancelled: the fiber was cancelled while it slept.
        TypeError, ValueError: ``deadline`` is not a number, or NaN (when called).
    """
    return Sleep(check_seconds(deadline, "sleep_until()'s deadline"))


def fd_of(obj, what: str = "the fd") -> int:
    """The fd of an int or of an object with ``fileno()`` (``poorio.platform.fileno``), or a clear error.

    Raises:
        ValueError: ``obj`` is not an open fd nor has one; ``what`` names it.
    """
    if obj.__class__ is int and 0 <= obj <= 0x7FFFFFFF:
        return obj
    try:
        return fileno(obj)
    except ValueError as error:
        raise ValueError(f"{what} must be an open fd or have fileno(): {error}") from None


def _io_trap(obj, events: int, what: str) -> YieldForIo:
    """The trap of a raw wait on ``obj`` for ``events``.

    An object's registration is kept for its next wait, with a weak
    reference to it as the keep token: the next wait on the same object
    costs no syscall, and a wait on another object under the same number
    (the first was closed meanwhile) registers afresh.  A bare int has no
    identity to keep by, so its fd is registered only while waited on.
    """
    if obj.__class__ is int:
        return YieldForIo(fd_of(obj, what), events)
    try:
        fd = obj.fileno()
    except AttributeError:
        fd = None
    if fd.__class__ is not int or not 0 <= fd <= 0x7FFFFFFF:
        fd = fd_of(obj, what)  # the right error, or the fd of an int subclass
    try:
        token = _weak(obj)
    except TypeError:  # not weakly referenceable: no identity to keep by
        token = None
    return YieldForIo(fd, events, token)


def wait_readable(obj) -> YieldForIo:
    """Park this fiber until ``obj`` (an fd, or anything with ``fileno()``) is readable.  Await it.

    Readiness includes errors and hang-ups: retry the syscall to see them.

    Raises:
        BusyResourceError: another fiber already waits to read ``obj``.
        ClosedResourceError: ``obj`` was closed (``notify_closing``) meanwhile.
        Cancelled: the fiber was cancelled while it waited.
        OSError: the kernel refused to watch the fd (real errno).
        ValueError: ``obj`` is not an open fd (when called).
    """
    return _io_trap(obj, READABLE, "wait_readable()'s argument")


def wait_writable(obj) -> YieldForIo:
    """Park this fiber until ``obj`` (an fd, or anything with ``fileno()``) is writable.  Await it.

    Raises:
        BusyResourceError: another fiber already waits to write ``obj``.
        ClosedResourceError: ``obj`` was closed (``notify_closing``) meanwhile.
        Cancelled: the fiber was cancelled while it waited.
        OSError: the kernel refused to watch the fd (real errno).
        ValueError: ``obj`` is not an open fd (when called).
    """
    return _io_trap(obj, WRITABLE, "wait_writable()'s argument")


def suspend(setup, what=None, abortable: bool = True) -> Suspend:
    """Park this fiber on a new ``Suspension`` until someone completes it.  Await it.

    ``setup(suspension)`` runs in the scheduler right after the fiber parks;
    it registers the suspension with every party that may wake it (see
    ``poorio._core.fiber.Suspension``).  The first to complete it wins.  If
    ``setup`` raises, the fiber is resumed with that exception.

    The awaited value is the one the suspension was completed with.

    Raises:
        Cancelled: the fiber was cancelled (only if ``abortable``).
        BaseException: whatever the suspension was failed with.
    """
    return Suspend(setup, what, abortable)
