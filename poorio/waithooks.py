"""Wait hooks: how an IO object waits for its fd -- on fibers (``FIBERS``, the default) or blocking the thread (``BLOCKING``).

An IO object never parks a fiber or polls a pool itself: it asks its wait
hook, once at birth, for the ``FdWaits`` it keeps -- two awaitables, one
for readability and one for writability, awaited again and again -- and
calls the hook to yield (``checkpoint``), back off (``sleep``), wait with a
limit (``writable_within``), hold back while the loop has no room for
another fd (``room``/``wait_for_room``), and say it is about to close an fd
(``closing``).

``FIBERS`` builds the two awaitables as traps with a ``KeptFd``, so the
fd's registration stays between waits (the object tells the scheduler
before it closes the fd).  ``BLOCKING`` blocks the thread in a one-fd pool,
so the same stream classes run without any scheduler: drive their
coroutines with ``blocking(...)``.  Subclass ``WaitHook`` to run IO objects
on another kind of loop.
"""

from __future__ import annotations

import time

from ._core.cancel import move_on_after
from ._core import notify_closing, room, stats, wait_for_room
from ._core.traps import YieldForIo, checkpoint, sleep, wait_readable, wait_writable
from .events import KeptFd
from .platform import READABLE, WRITABLE, new_pool

__all__ = ["WaitHook", "FdWaits", "FIBERS", "BLOCKING", "blocking"]

_NO_LIMIT = 2**63  # the room of a loop without a pool to fill


class FdWaits:
    """What an IO object awaits for its fd, made once by its wait hook: ``readable``, ``writable``.

    Each is an awaitable that can be awaited again and again.  ``close_later``
    is for a finalizer: it closes the fd once no wait registration holds it.
    """

    __slots__ = ("readable", "writable", "kept")

    def __init__(self, readable, writable, kept: KeptFd | None = None) -> None:
        self.readable = readable
        self.writable = writable
        self.kept = kept  # the fd's KeptFd when its registration outlives each wait

    def close_later(self, close) -> None:
        """Call ``close()`` now, or -- when the fd may still be registered -- as soon as it is not."""
        if self.kept is None:
            close()
        else:
            self.kept.close_later(close)


class _Deferred:
    """An awaitable that awaits ``fn(fd)`` afresh each time: a hook's ``readable``/``writable`` as an ``FdWaits`` member."""

    __slots__ = ("fn", "fd")

    def __init__(self, fn, fd: int) -> None:
        self.fn = fn
        self.fd = fd

    def __await__(self):
        return self.fn(self.fd).__await__()


class WaitHook:
    """How an IO object waits for its fd: the awaitables and calls it needs.

    ``readable(fd)``/``writable(fd)`` wait for readiness;
    ``writable_within(fd, seconds)`` waits at most that long and says
    whether the fd became writable; ``checkpoint()`` is a cancellation and
    fairness point; ``sleep(seconds)`` backs off; ``closing(fd)`` is told
    before the fd is closed; ``waits(fd)`` makes the ``FdWaits`` an IO
    object keeps for its fd; ``room()`` and ``wait_for_room(count)`` let a
    listener hold back while the loop cannot watch more fds (by default
    there is always room).  Subclass it to run streams on another kind of
    loop.
    """

    __slots__ = ()

    def room(self) -> int:
        """How many more fds the loop can start waiting on (default: no limit)."""
        return _NO_LIMIT

    async def wait_for_room(self, count: int) -> None:
        """Wait until ``room()`` is at least ``count`` (or as much as the loop can ever have)."""

    def waits(self, fd: int) -> FdWaits:
        """The awaitables an IO object keeps for ``fd`` (by default: ``readable(fd)``/``writable(fd)`` afresh)."""
        return FdWaits(_Deferred(self.readable, fd), _Deferred(self.writable, fd))

    async def sleep(self, seconds: float) -> None:
        raise NotImplementedError

    async def readable(self, fd: int) -> None:
        raise NotImplementedError

    async def writable(self, fd: int) -> None:
        raise NotImplementedError

    async def writable_within(self, fd: int, seconds: float) -> bool:
        raise NotImplementedError

    async def checkpoint(self) -> None:
        raise NotImplementedError

    def closing(self, fd: int) -> None:
        raise NotImplementedError


class _FiberWait(WaitHook):
    """Park the current fiber on poorio's scheduler."""

    __slots__ = ()

    # The traps themselves: the hot path pays no extra call.
    readable = staticmethod(wait_readable)
    writable = staticmethod(wait_writable)
    checkpoint = staticmethod(checkpoint)
    sleep = staticmethod(sleep)

    def waits(self, fd: int) -> FdWaits:
        """Two traps built once, whose registration stays between waits (``close`` tells the scheduler first)."""
        kept = KeptFd(fd)
        return FdWaits(YieldForIo(fd, READABLE, kept), YieldForIo(fd, WRITABLE, kept), kept)

    async def writable_within(self, fd: int, seconds: float) -> bool:
        with move_on_after(seconds) as scope:
            await wait_writable(fd)
        return not scope.cancelled_caught

    def closing(self, fd: int) -> None:
        try:
            notify_closing(fd)
        except RuntimeError:  # no scheduler in this thread: nobody can be waiting here
            pass

    room = staticmethod(room)

    async def wait_for_room(self, count: int) -> None:
        try:
            await wait_for_room(count)
        except ValueError:  # more than the pool can ever hold: as much as it can
            await wait_for_room(stats().capacity)

    def __repr__(self) -> str:
        return "poorio.streams.FIBERS"


class _BlockingWait(WaitHook):
    """Block the thread in a one-fd pool until the fd is ready; no scheduler needed."""

    __slots__ = ()

    async def readable(self, fd: int) -> None:
        _block(fd, READABLE)

    async def writable(self, fd: int) -> None:
        _block(fd, WRITABLE)

    async def writable_within(self, fd: int, seconds: float) -> bool:
        return _block(fd, WRITABLE, seconds)

    async def checkpoint(self) -> None:
        pass

    async def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def closing(self, fd: int) -> None:
        pass

    def __repr__(self) -> str:
        return "poorio.streams.BLOCKING"


def _block(fd: int, events: int, seconds: float | None = None) -> bool:
    with new_pool(1) as pool:
        pool.add(fd, events)
        # Errors and hang-ups end the wait too: the retried syscall reports them.
        return bool(pool.cycle(seconds))


FIBERS = _FiberWait()
BLOCKING = _BlockingWait()


def blocking(awaitable):
    """Run a stream coroutine made with ``wait=BLOCKING`` to completion in this thread.

    Raises:
        RuntimeError: the coroutine tried to suspend (it needs a scheduler).
        BaseException: whatever the coroutine raised.
    """
    coro = awaitable.__await__() if not hasattr(awaitable, "send") else awaitable
    try:
        trap = coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError(f"blocking(): the coroutine suspended on {trap!r}; run it under poorio.run")
