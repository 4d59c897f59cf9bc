"""A small bounded pool of worker threads, and ``run_in_thread`` to await a blocking call in one.

Some calls cannot be made non-blocking: reading a regular file, a terminal,
``getaddrinfo``.  ``await run_in_thread(fn, *args)`` runs ``fn(*args)`` in a
worker thread while the calling fiber is parked, and the other fibers keep
running.  The fiber's suspension declares ``expect_thread()``, so the
scheduler waits for the worker instead of reporting a deadlock, and the
worker hands the outcome back with ``complete_threadsafe``/``fail_threadsafe``.

The pool (one per process, shared by every scheduler; ``WorkerPool`` makes
others) creates threads only when a job finds no idle one, never more than
``max_threads``; a job that finds them all busy waits in a queue, and so does
the fiber that submitted it -- that is the back-pressure.  An idle thread
exits after ``idle_timeout`` seconds.  Threads are daemons: a call still
blocked at interpreter exit (a read of a terminal) does not hold the exit up.

Cancellation.  A blocking call in a thread cannot be interrupted.  With
``cancellable=False`` (the default) a cancelled fiber waits for the call to
end and sees ``Cancelled`` at its next suspension point; a fiber that is
already cancelled does not start the call at all.  With ``cancellable=True``
the fiber stops waiting at once: a queued call is dropped, a running one
finishes unseen and its result (or exception) is discarded.

Shutdown.  Every suspension is completed or abandoned -- and its ``on_wake``
cleanups run -- before its scheduler closes; the cleanup here marks the job
abandoned under the pool's lock, and a worker delivers an outcome only while
holding that lock and only to a job not abandoned.  So no worker ever calls
into a closed scheduler, even when ``poorio.run`` ends while calls are still
running.

What this module does not do: run coroutines in threads, interrupt or kill a
thread, or bound how long a call may take.
"""

from __future__ import annotations

import os
from _thread import _local, allocate_lock
from collections import deque

from ._core.traps import suspend
from .errors import Cancelled, ClosedResourceError
from .record import Record

__all__ = [
    "WorkerPool", "WorkerPoolStatistics", "run_in_thread", "default_pool", "calling_fiber", "DEFAULT_MAX_THREADS",
]  # fmt: skip

DEFAULT_MAX_THREADS = 16  # enough for a few slow lookups and files at once, small for small devices
DEFAULT_IDLE_TIMEOUT = 10.0  # seconds an idle thread waits for work before it exits


class WorkerPoolStatistics(Record):
    """A frozen snapshot of a ``WorkerPool``: its threads, the idle ones, queued and running jobs."""

    __slots__ = ("max_threads", "threads", "idle", "queued", "running")


class _Job:
    """One call to make in a worker, and the suspension to hand its outcome to."""

    __slots__ = ("fn", "args", "susp", "caller")

    def __init__(self, fn, args: tuple) -> None:
        self.fn = fn
        self.args = args
        self.susp = None  # the waiting fiber's Suspension; None once delivered or abandoned (under the lock)
        self.caller = None  # (scheduler, fiber) that submitted it, for poorio.from_thread


class WorkerPool:
    """At most ``max_threads`` daemon threads, made on demand, each exiting after ``idle_timeout`` idle seconds."""

    def __init__(self, max_threads: int = DEFAULT_MAX_THREADS, idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                 name: str = "poorio-worker") -> None:
        if max_threads < 1:
            raise ValueError(f"max_threads must be >= 1, not {max_threads!r}")
        self._max = max_threads
        self._idle_timeout = idle_timeout
        self._name = name
        self._lock = allocate_lock()  # guards every field below, and every delivery
        self._jobs = deque()  # jobs no thread has taken yet
        self._idle = []  # one held lock per idle thread; releasing it wakes that thread (LIFO: hot threads first)
        self._threads = 0  # threads alive (idle or busy)
        self._running = 0  # jobs being called right now

    def statistics(self) -> WorkerPoolStatistics:
        """How many threads exist and idle, how many jobs are queued and running."""
        with self._lock:
            return WorkerPoolStatistics(max_threads=self._max, threads=self._threads, idle=len(self._idle),
                                        queued=len(self._jobs), running=self._running)

    def _submit(self, job: _Job) -> None:
        """Queue ``job`` and wake or start a thread for it (scheduler thread).

        Raises:
            RuntimeError: no thread could be started and none exists to take the job.
        """
        with self._lock:
            self._jobs.append(job)
            if self._idle:
                self._idle.pop().release()
                return
            if self._threads >= self._max:
                return  # back-pressure: the job waits for a busy thread
            self._threads += 1
        import threading  # only programs that offload anything pay for it

        try:
            threading.Thread(target=self._work, name=self._name, daemon=True).start()
        except BaseException:
            with self._lock:
                self._threads -= 1
                if self._threads == 0 and job in self._jobs:
                    self._jobs.remove(job)
                    raise
            # other threads exist: one of them takes the job when it is free

    def _forget(self, job: _Job) -> None:
        """The fiber stopped waiting for ``job`` (scheduler thread): drop it if queued, discard its outcome."""
        with self._lock:
            job.susp = None
            try:
                self._jobs.remove(job)
            except ValueError:
                pass  # already taken (running or done)

    def _work(self) -> None:
        """A worker thread's life: take jobs until none comes for ``idle_timeout`` seconds."""
        lock = self._lock
        while True:
            with lock:
                job = self._jobs.popleft() if self._jobs else None
                if job is None:
                    gate = allocate_lock()
                    gate.acquire()
                    self._idle.append(gate)
                else:
                    self._running += 1
            if job is None:
                if not gate.acquire(timeout=self._idle_timeout):
                    with lock:
                        if gate in self._idle:  # not picked meanwhile: retire
                            self._idle.remove(gate)
                            self._threads -= 1
                            return
                continue
            self._call(job)

    def _call(self, job: _Job) -> None:
        _worker.caller = job.caller  # so the call can reach back with poorio.from_thread
        try:
            value = job.fn(*job.args)
            ok = True
        except BaseException as error:  # the fiber gets whatever the call raised, SystemExit included
            value = error
            ok = False
        finally:
            _worker.caller = None
        with self._lock:
            self._running -= 1
            susp = job.susp
            job.susp = None
            if susp is not None:
                try:
                    if ok:
                        susp.complete_threadsafe(value)
                    else:
                        susp.fail_threadsafe(value)
                except ClosedResourceError:
                    pass  # unreachable by the protocol above; a worker must not die of it anyway

    def __repr__(self) -> str:
        return f"<WorkerPool {self._name!r} {self.statistics()!r}>"


class _WorkerState(_local):
    caller = None  # (scheduler, fiber) whose run_in_thread call this thread is making, if any


_worker = _WorkerState()


def calling_fiber():
    """In a worker thread running a ``run_in_thread`` call: ``(scheduler, fiber)`` that made it; else None."""
    return _worker.caller


_default = None  # the process's pool, made on first use
_default_lock = allocate_lock()


def default_pool() -> WorkerPool:
    """The process-wide pool ``run_in_thread`` uses unless told otherwise (made on first use)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = WorkerPool()
                if hasattr(os, "register_at_fork"):
                    # A forked child has none of its parent's threads: start afresh.
                    os.register_at_fork(after_in_child=_reset_after_fork)
    return _default


def _reset_after_fork() -> None:
    global _default, _default_lock
    _default = None
    _default_lock = allocate_lock()


async def run_in_thread(fn, *args, cancellable: bool = False, pool: WorkerPool | None = None):
    """Call ``fn(*args)`` in a worker thread; return its result or raise its exception.

    ``cancellable=False``: a cancelled fiber still waits for the call to end
    (and a fiber already cancelled does not start it).  ``cancellable=True``:
    cancellation stops the wait at once; the call, if it started, finishes
    in its thread and its outcome is discarded.

    Raises:
        Cancelled: the fiber was cancelled (see above for when).
        RuntimeError: not in a fiber, or no thread could be started.
        BaseException: whatever ``fn`` raised, unmodified.
    """
    if pool is None:
        pool = _default if _default is not None else default_pool()
    job = _Job(fn, args)

    def setup(susp) -> None:
        if not cancellable and susp.cancel_requested:
            susp.fail(Cancelled())  # not abortable, so the scheduler did not check: do not start it
            return
        _start(pool, job, susp)

    what = f"{getattr(fn, '__qualname__', fn)!s} in a worker thread"
    return await suspend(setup, what, cancellable)


def _start(pool: WorkerPool, job: _Job, susp) -> None:
    susp.expect_thread()
    job.susp = susp
    job.caller = (susp.scheduler, susp.fiber)
    susp.on_wake(lambda: pool._forget(job))
    pool._submit(job)
