"""How a fiber waits for a child process to exit, without reaping it: a pidfd, SIGCHLD, or a worker thread.

The caller (``poorio.process``) reaps the child itself, with a non-blocking
``waitpid`` after the wait returns, and loops if the child is still running.
So every mechanism here only has to say "something may have changed":

1. **pidfd** (Linux 5.3+): the scheduler watches the child's pidfd for
   ``READABLE``, like any fd.  No signal handler, no thread, no race.
2. **SIGCHLD** through the event layer, where there is no pidfd (macOS, the
   BSDs, old kernels, seccomp): one persistent signal event per scheduler,
   shared by every fiber waiting for a child, wakes them all; each re-checks
   its own child.  The handler is installed only while somebody waits, and
   the caller polls its child once more *after* installing it, so an exit
   just before is not missed.  Python runs signal handlers in the main
   thread only, so this serves the main thread's scheduler.
3. **A worker thread** in any other thread: ``waitid(..., WNOWAIT)`` blocks
   until the child exits without reaping it (so a cancelled, abandoned wait
   leaves the status for the next one).  Where ``os.waitid`` is missing
   (macOS), and where there is no SIGCHLD at all (Windows), the fiber polls
   with a growing sleep (10 ms up to 0.5 s).

What this module does not do: reap, or notice children that someone else
(``os.wait()`` elsewhere in the program) reaps first.
"""

from __future__ import annotations

import os
import signal

from ._core.traps import sleep, suspend, wait_readable
from .threads import run_in_thread

__all__ = ["wait_for_exit"]


class _SigchldWatch:
    """The main thread's SIGCHLD event, while any fiber waits for a child: it wakes them all."""

    __slots__ = ("scheduler", "waiters")

    def __init__(self) -> None:
        self.scheduler = None  # the scheduler watching SIGCHLD for us, while one does
        self.waiters = []  # suspensions of fibers waiting for some child

    def add(self, susp) -> None:
        if self.scheduler is None:
            susp.scheduler.watch_signal(_SIGCHLD, self)
            self.scheduler = susp.scheduler
        self.waiters.append(susp)
        susp.on_wake(lambda: self._remove(susp))

    def _remove(self, susp) -> None:
        try:
            self.waiters.remove(susp)
        except ValueError:
            pass
        if not self.waiters and self.scheduler is not None:
            scheduler, self.scheduler = self.scheduler, None
            scheduler.unwatch_signal(_SIGCHLD)  # restores the handler that was there before

    def on_event(self) -> None:
        """SIGCHLD arrived: every waiter polls its child."""
        for susp in list(self.waiters):
            susp.complete()


_sigchld = _SigchldWatch()
_SIGCHLD = getattr(signal, "SIGCHLD", None)  # Windows has none


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


async def wait_for_exit(pid: int, pidfd: int, exited) -> None:
    """Return when child ``pid`` may have exited (``exited()`` polls and reaps it; True once it has).

    ``pidfd`` is the child's pidfd, or -1 where there is none.

    Raises:
        ClosedResourceError: the pidfd was closed while waiting.
        Cancelled: the fiber was cancelled while it waited.
    """
    if pidfd >= 0:
        await wait_readable(pidfd)
    elif _SIGCHLD is not None and _in_main_thread():

        def setup(susp) -> None:
            _sigchld.add(susp)
            if exited():  # it exited before the handler was there: SIGCHLD went unseen
                susp.complete()

        await suspend(setup, f"SIGCHLD for child {pid}")
    elif hasattr(os, "waitid"):
        try:
            await run_in_thread(os.waitid, os.P_PID, pid, os.WEXITED | os.WNOWAIT, cancellable=True)
        except ChildProcessError:
            pass  # reaped meanwhile: the caller's poll sees it
    else:
        delay = 0.01
        while not exited():
            await sleep(delay)
            delay = min(delay * 2, 0.5)
