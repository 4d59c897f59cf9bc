"""Shared fixtures: every test runs under one hang guard and must leave no fd, pool, thread or child behind it."""

from __future__ import annotations

import gc
import os
import platform
import socket
import sys
import threading
import time

import pytest
from _hang_guard import hang_guard as _guard
from fd_support import open_fds as listed_fds

from poorio.platform import open_pools

try:
    from hypothesis import HealthCheck, settings

    # No example database: it would keep files open and write into the checkout.
    settings.register_profile(
        "poorio", database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.load_profile("poorio")
except ImportError:  # pragma: no cover - hypothesis is a test extra
    pass


# A hung test ends its worker with every thread's traceback on the real stderr.
# Generous, so a slow but correct test on a loaded CI machine never trips it;
# faulthandler has one timer per process, so this is the only guard (a guard
# inside a test would cancel it).
HANG_LIMIT = 120.0 if platform.python_implementation() == "PyPy" else 60.0


@pytest.fixture(autouse=True)
def hang_guard(request):
    """Exit the test process, printing where every thread was, if a test runs past ``HANG_LIMIT``."""
    with _guard(request.config, HANG_LIMIT):
        yield


def open_fds() -> set:
    """The fds this process has open right now (none listed where there is no fd table: the check is off there)."""
    fds = listed_fds()
    return set() if fds is None else fds


def _describe(fd: int) -> str:
    try:
        return f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}"
    except OSError:
        return str(fd)


def children() -> set:
    """The pids of this process's children, running or unreaped (Linux: /proc; elsewhere the check is off)."""
    pids = set()
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return pids
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children") as listing:
                pids.update(int(pid) for pid in listing.read().split())
        except OSError:  # the thread ended meanwhile, or the kernel lacks CONFIG_PROC_CHILDREN
            pass
    return pids


def _settle(check, patience: float) -> bool:
    """Whether ``check()`` turns true within ``patience`` seconds (polled; most leaks are just late)."""
    deadline = time.monotonic() + patience
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _workers_idle() -> bool:
    if "poorio.threads" not in sys.modules:
        return True
    stats = sys.modules["poorio.threads"].default_pool().statistics()
    return stats.running == 0 and stats.queued == 0


def _is_pool_worker(thread) -> bool:
    return thread.name.startswith("poorio-worker")


@pytest.fixture(autouse=True)
def no_leaks(request):
    """Fail any test that leaves behind an fd, an open pool (so registrations or timers), a thread or a child.

    * fds: every fd open after the test that was not before it.
    * pools: every ``SocketIoPool`` -- and so every event set and scheduler,
      which own one -- the test opened and did not close, with what it still
      watches (``poorio.platform.open_pools()``).
    * threads: every thread the test started that is still alive.  poorio's
      worker threads (``poorio-worker``) are pooled by design and outlive
      the call that started them, idle, until their idle timeout: they are
      allowed once the shared pool has no call running or queued (a call
      the test abandoned gets a few seconds to finish).
    * children: every child process, running or unreaped (Linux only).

    Each kind gets a short grace period first: a thread or child that is
    just finishing is late, not leaked.
    """
    fds, pools, threads, kids = open_fds(), set(map(id, open_pools())), set(threading.enumerate()), children()
    yield
    problems = []
    # A call the test abandoned may still run in a worker and hold an fd for
    # a moment: let it finish.
    _settle(_workers_idle, 10.0)
    leaked = open_fds() - fds
    left = [pool for pool in open_pools() if id(pool) not in pools]
    if leaked or left:
        gc.collect()  # an fd or pool held only by a reference cycle goes with a collection...
        _settle(lambda: not open_fds() - fds, 1.0)  # ...and one a finishing thread holds is late, not leaked
        leaked = open_fds() - fds
        left = [pool for pool in open_pools() if id(pool) not in pools]
    if leaked:  # ...anything still open is a real leak
        problems.append("test leaked fds: " + ", ".join(_describe(fd) for fd in sorted(leaked)))
    if left:
        problems.append("test left pools open: " + ", ".join(f"{pool!r} watching {sorted(pool.fds())}" for pool in left))

    def started():
        return [t for t in threading.enumerate() if t not in threads and t.is_alive() and not _is_pool_worker(t)]

    if not _settle(lambda: not started(), 2.0):
        problems.append("test left threads running: " + ", ".join(repr(t) for t in started()))
    if not _workers_idle():
        problems.append(f"test left poorio worker calls running: {sys.modules['poorio.threads'].default_pool().statistics()}")
    if not _settle(lambda: not children() - kids, 5.0):
        stray = sorted(children() - kids)
        problems.append(f"test left child processes running or unreaped: {stray}")
        for pid in stray:  # so the next tests do not inherit them
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except OSError:
                pass
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


@pytest.fixture
def pair():
    """A connected pair of non-blocking sockets, closed after the test."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()
