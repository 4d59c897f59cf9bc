"""Pool cost growth: one cycle's time with N idle fds registered and one active.

Runs inside a worker subprocess.  The idle fds are ``dup()``s of the read
end of one pipe that is never written -- each is a registration of its own
for the kernel, yet the whole set costs N + 3 fds instead of 2N, so 10,000
idle fds fit under a 20,000-fd limit.  The active fd is one end of a socket
pair with one unread byte waiting: level-triggered, it is reported by every
cycle.  ``cycle(1.0)`` is timed the way a busy loop calls it: a non-zero
timeout that never has to run out.
"""

from __future__ import annotations

import os
import resource
import socket
import time


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise RuntimeError(f"needs {needed} fds but RLIMIT_NOFILE's hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed if hard == resource.RLIM_INFINITY else hard, hard))


def _interest(impl: str, capacity: int):
    """(add(fd), cycle(), close()) for one implementation, READABLE interest only."""
    if impl.startswith("poorio-"):
        from poorio.platform import READABLE, new_pool

        pool = new_pool(capacity, impl[len("poorio-"):])
        return (lambda fd: pool.add(fd, READABLE)), (lambda: pool.cycle(1.0)), pool.close
    import selectors

    kind = {"selectors-epoll": "EpollSelector", "selectors-poll": "PollSelector"}[impl]
    sel = getattr(selectors, kind)()
    return (lambda fd: sel.register(fd, selectors.EVENT_READ)), (lambda: sel.select(1.0)), sel.close


def cycle_time(impl: str, fds: int, seconds: float = 0.3) -> dict:
    """Microseconds per cycle with ``fds`` idle registrations and one active."""
    _raise_fd_limit(fds + 64)
    r, w = os.pipe()
    idle = [r] + [os.dup(r) for _ in range(fds - 1)]
    active, peer = socket.socketpair()
    peer.send(b"x")
    add, cycle, close = _interest(impl, fds + 8)
    try:
        t0 = time.perf_counter()
        for fd in idle:
            add(fd)
        add_us = (time.perf_counter() - t0) / fds * 1e6
        add(active.fileno())
        ready = cycle()
        if len(ready) != 1:
            raise AssertionError(f"expected one ready fd, got {len(ready)}")
        batch = 10

        def cycles_for(seconds):
            done = 0
            start = time.perf_counter()
            deadline = start + seconds
            while True:
                for _ in range(batch):
                    cycle()
                done += batch
                now = time.perf_counter()
                if now >= deadline:
                    return done, now - start

        cycles_for(seconds / 2)  # warm-up (PyPy's JIT)
        first, t1 = cycles_for(seconds / 2)  # the window, in two halves
        second, t2 = cycles_for(seconds / 2)
        return {
            "us_per_cycle": (t1 + t2) / (first + second) * 1e6,
            "halves": [first / t1, second / t2],  # cycles per second
            "add_us_per_fd": add_us,
            "cycles": first + second,
        }
    finally:
        close()
        for fd in idle:
            os.close(fd)
        os.close(w)
        active.close()
        peer.close()
