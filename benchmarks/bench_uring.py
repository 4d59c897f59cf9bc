"""io_uring from Python, at the platform layer: is a completion worth it, operation by operation?

Two questions decide which operations the scheduler's proactor path will
use, and each is measured side by side, in one process, interleaved:

* **file reads** -- sequential and random ``pread``s of one block size
  from a file in the page cache, through ``uring.Ring`` (``QD`` reads in
  flight) against the same reads in a plain thread pool (``QD`` in flight,
  ``WORKERS`` threads) and against a plain synchronous ``os.pread`` loop;
* **socket ping-pong** -- one small message bounced across a socket pair,
  through the ring (a receive posted on each side, a send per hop) against
  epoll readiness and ``recv``/``send`` (the readiness path as poorio's
  pools drive it), both from Python.

Run it alone (the harness is being reworked; this module stands apart)::

    python3 -m benchmarks.bench_uring [--seconds 0.3] [--reps 5] [--block 4096,65536]

It prints one row per measurement: the median over ``--reps`` interleaved
repetitions, the min-max spread, and the ratio to the row's baseline.
Reads come from the page cache (the file is written first): this measures
the cost of the path from Python, not the disk.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import platform
import random
import socket
import statistics
import sys
import tempfile
import time

FILE_SIZE = 32 * 1024 * 1024
QD = 32  # operations in flight, for the ring and the pool alike
WORKERS = 4
MESSAGE = b"x" * 64


# -- file reads ---------------------------------------------------------------------


def offsets(block: int, pattern: str, count: int) -> list:
    blocks = FILE_SIZE // block
    if pattern == "sequential":
        return [(i % blocks) * block for i in range(count)]
    rng = random.Random(1234)
    return [rng.randrange(blocks) * block for _ in range(count)]


def reads_sync(fd: int, block: int, where: list, seconds: float) -> float:
    """Reads per second, one os.pread at a time."""
    pread = os.pread
    done, started, end = 0, time.perf_counter(), time.perf_counter() + seconds
    n = len(where)
    while True:
        for _ in range(256):
            pread(fd, block, where[done % n])
            done += 1
        if time.perf_counter() >= end:
            return done / (time.perf_counter() - started)


def reads_threads(fd: int, block: int, where: list, seconds: float, executor) -> float:
    """Reads per second through a thread pool, QD in flight."""
    pread = os.pread
    n = len(where)
    pending = {executor.submit(pread, fd, block, where[i % n]) for i in range(QD)}
    done, issued = 0, QD
    started = time.perf_counter()
    end = started + seconds
    while True:
        finished, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
        for future in finished:
            future.result()
            done += 1
            if time.perf_counter() < end:
                pending.add(executor.submit(pread, fd, block, where[issued % n]))
                issued += 1
        if not pending:
            return done / (time.perf_counter() - started)


def reads_ring(fd: int, block: int, where: list, seconds: float, ring) -> float:
    """Reads per second through the ring, QD in flight, each into its own buffer."""
    n = len(where)
    buffers = [bytearray(block) for _ in range(QD)]
    for slot in range(QD):
        ring.submit_read(fd, buffers[slot], where[slot % n], slot)
    done, issued = 0, QD
    started = time.perf_counter()
    end = started + seconds
    in_flight = QD
    while in_flight:
        for slot, result, _ in ring.wait(None):
            if isinstance(result, OSError):
                raise result
            done += 1
            in_flight -= 1
            if time.perf_counter() < end:
                ring.submit_read(fd, buffers[slot], where[issued % n], slot)
                issued += 1
                in_flight += 1
    return done / (time.perf_counter() - started)


# -- ping-pong --------------------------------------------------------------------------


def pingpong_epoll(a, b, seconds: float) -> float:
    """Round trips per second: epoll says readable, then recv and send."""
    from poorio.platform import READABLE, new_pool

    size = len(MESSAGE)
    with new_pool(4, "epoll") as pool:
        pool.add(a, READABLE)
        pool.add(b, READABLE)
        fa, fb = a.fileno(), b.fileno()
        a.send(MESSAGE)
        trips, started = 0, time.perf_counter()
        end = started + seconds
        while True:
            for fd, _ in pool.cycle(None):
                if fd == fb:
                    b.send(b.recv(size))
                else:
                    a.recv(size)
                    trips += 1
                    if trips % 64 == 0 and time.perf_counter() >= end:
                        elapsed = time.perf_counter() - started
                        pool.remove(a)
                        pool.remove(b)
                        return trips / elapsed
                    a.send(MESSAGE)


def pingpong_ring(a, b, seconds: float) -> float:
    """Round trips per second: a receive posted on each side, a send submitted per hop."""
    from poorio.platform import uring

    size = len(MESSAGE)
    buf_a, buf_b = bytearray(size), bytearray(size)
    with uring.Ring(16) as ring:
        ring.submit_recv(a, buf_a, "a")
        ring.submit_recv(b, buf_b, "b")
        ring.submit_send(a, MESSAGE, ("send", 0))
        sends = 1
        trips, started = 0, time.perf_counter()
        end = started + seconds
        stop = False
        while True:
            for token, result, _ in ring.wait(None):
                if isinstance(result, OSError):
                    raise result
                if token == "b":
                    ring.submit_send(b, buf_b[:result], ("send", sends))
                    sends += 1
                    ring.submit_recv(b, buf_b, "b")
                elif token == "a":
                    trips += 1
                    if trips % 64 == 0 and time.perf_counter() >= end:
                        stop = True
                    else:
                        ring.submit_recv(a, buf_a, "a")
                        ring.submit_send(a, MESSAGE, ("send", sends))
                        sends += 1
            if stop:
                elapsed = time.perf_counter() - started
                ring.cancel("b")
                while len(ring):
                    ring.wait(1.0)
                return trips / elapsed


# -- the run ------------------------------------------------------------------------------


def measure(cases: list, reps: int) -> dict:
    """Each case ``reps`` times, interleaved: {name: [rate, ...]}."""
    rates: dict = {name: [] for name, _ in cases}
    for _ in range(reps):
        for name, run in cases:
            rates[name].append(run())
    return rates


def report(title: str, rates: dict, unit: str) -> None:
    names = list(rates)
    base = statistics.median(rates[names[0]])
    print(f"\n{title}")
    for name in names:
        values = rates[name]
        median = statistics.median(values)
        print(f"  {name:34} {median:>12,.0f} {unit}   min-max {min(values):>10,.0f}-{max(values):<10,.0f}"
              f"  {median / base:5.2f}x {names[0]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="length of one measurement")
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions of each")
    parser.add_argument("--block", default="4096,65536", help="read sizes, comma-separated")
    args = parser.parse_args(argv)

    from poorio.platform import uring

    reason = uring.unavailable_reason()
    if reason:
        print(f"io_uring is not usable here: {reason}")
        return 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{platform.python_implementation()} {platform.python_version()}, Linux {os.uname().release}, "
          f"{os.cpu_count()} CPUs, load average {load:.2f}; {args.reps} x {args.seconds} s each, interleaved")

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "data")
        with open(path, "wb") as out:
            out.write(os.urandom(FILE_SIZE))
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            with uring.Ring(QD) as ring, concurrent.futures.ThreadPoolExecutor(WORKERS) as executor:
                for block in (int(word) for word in args.block.split(",")):
                    for pattern in ("sequential", "random"):
                        where = offsets(block, pattern, 1 << 14)
                        reads_sync(fd, block, where, 0.05)  # warm the page cache and the JIT
                        cases = [
                            (f"thread pool ({WORKERS} threads, QD {QD})",
                             lambda: reads_threads(fd, block, where, args.seconds, executor)),
                            (f"uring.Ring (QD {QD})", lambda: reads_ring(fd, block, where, args.seconds, ring)),
                            ("os.pread, one at a time", lambda: reads_sync(fd, block, where, args.seconds)),
                        ]
                        report(f"{pattern} reads of {block} bytes from the page cache", measure(cases, args.reps),
                               "reads/s")
        finally:
            os.close(fd)

    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        b.setblocking(False)
        cases = [
            ("epoll readiness + recv/send", lambda: pingpong_epoll(a, b, args.seconds)),
            ("uring.Ring recv/send", lambda: pingpong_ring(a, b, args.seconds)),
        ]
        report(f"ping-pong of {len(MESSAGE)} bytes over a socket pair", measure(cases, args.reps), "round trips/s")
    finally:
        a.close()
        b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
