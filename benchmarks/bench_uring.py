"""io_uring from Python, at the platform layer: is a completion worth it, operation by operation?

Two questions decide which operations the scheduler's proactor path will
use, and each is measured side by side, in one process, interleaved:

* **file reads** -- sequential and random ``pread``s of one block size
  from a file in the page cache, through ``uring.Ring`` (``QD`` reads in
  flight) against the same reads in a plain thread pool (``QD`` in flight,
  ``WORKERS`` threads) and against a plain synchronous ``os.pread`` loop;
* **socket ping-pong** -- a small message bounced across one socket pair,
  and across 64 pairs at once (where one ``io_uring_enter`` carries many
  operations), through the ring (a receive posted on each side, a send per
  hop) against epoll readiness and ``recv``/``send`` (the readiness path as
  poorio's pools drive it), both from Python.

Every variant hands out a new ``bytes`` per read, as a ``read(n)`` API
must: ``os.pread`` makes one; the ring reads into a reused buffer and
copies the result out.

Run it alone (the harness is being reworked; this module stands apart)::

    python3 -m benchmarks.bench_uring [--seconds 0.3] [--reps 5] [--block 4096,65536] [--pairs 1,64]

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
    done, got, started, end = 0, 0, time.perf_counter(), time.perf_counter() + seconds
    n = len(where)
    while True:
        for _ in range(256):
            got += len(pread(fd, block, where[done % n]))  # used, so no JIT can drop the copy
            done += 1
        if time.perf_counter() >= end:
            return _checked(done, got, block, started)


def reads_threads(fd: int, block: int, where: list, seconds: float, executor) -> float:
    """Reads per second through a thread pool, QD in flight."""
    pread = os.pread
    n = len(where)
    pending = {executor.submit(pread, fd, block, where[i % n]) for i in range(QD)}
    done, issued, got = 0, QD, 0
    started = time.perf_counter()
    end = started + seconds
    while True:
        finished, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
        for future in finished:
            got += len(future.result())
            done += 1
            if time.perf_counter() < end:
                pending.add(executor.submit(pread, fd, block, where[issued % n]))
                issued += 1
        if not pending:
            return _checked(done, got, block, started)


def reads_ring(fd: int, block: int, where: list, seconds: float, ring) -> float:
    """Reads per second through the ring, QD in flight, each into its own buffer."""
    n = len(where)
    buffers = [bytearray(block) for _ in range(QD)]
    for slot in range(QD):
        ring.submit_read(fd, buffers[slot], where[slot % n], slot)
    done, issued, got = 0, QD, 0
    started = time.perf_counter()
    end = started + seconds
    in_flight = QD
    while in_flight:
        for slot, result, _ in ring.wait(None):
            if isinstance(result, OSError):
                raise result
            got += len(bytes(memoryview(buffers[slot])[:result]))  # a read() hands out bytes, as pread does
            done += 1
            in_flight -= 1
            if time.perf_counter() < end:
                ring.submit_read(fd, buffers[slot], where[issued % n], slot)
                issued += 1
                in_flight += 1
    return _checked(done, got, block, started)


def _checked(done: int, got: int, block: int, started: float) -> float:
    """Reads per second -- after making sure every read returned a whole block."""
    if got != done * block:
        raise AssertionError(f"{done} reads of {block} bytes returned {got} bytes")
    return done / (time.perf_counter() - started)


# -- ping-pong --------------------------------------------------------------------------


def pingpong_epoll(pairs: list, seconds: float) -> float:
    """Round trips per second over all pairs: epoll says readable, then recv and send."""
    from poorio.platform import READABLE, new_pool

    size = len(MESSAGE)
    peer = {}
    with new_pool(2 * len(pairs) + 2, "epoll") as pool:
        for a, b in pairs:
            pool.add(a, READABLE)
            pool.add(b, READABLE)
            peer[a.fileno()] = (a, True)
            peer[b.fileno()] = (b, False)
            a.send(MESSAGE)
        trips, started = 0, time.perf_counter()
        end = started + seconds
        stopping = False
        out = len(pairs)  # messages still travelling
        while out:
            for fd, _ in pool.cycle(None):
                sock, initiator = peer[fd]
                data = sock.recv(size)
                if not initiator:
                    sock.send(data)
                    continue
                trips += 1
                if not stopping and trips % 64 == 0 and time.perf_counter() >= end:
                    stopping = True
                if stopping:
                    out -= 1
                else:
                    sock.send(MESSAGE)
        elapsed = time.perf_counter() - started
        for a, b in pairs:
            pool.remove(a)
            pool.remove(b)
        return trips / elapsed


def pingpong_ring(pairs: list, seconds: float) -> float:
    """Round trips per second over all pairs: a receive posted on each side, a send submitted per hop."""
    from poorio.platform import uring

    size = len(MESSAGE)
    sides = {}
    with uring.Ring(4 * len(pairs) + 4) as ring:
        for n, (a, b) in enumerate(pairs):
            sides[("a", n)] = (a, bytearray(size), True)
            sides[("b", n)] = (b, bytearray(size), False)
            ring.submit_recv(a, sides[("a", n)][1], ("a", n))
            ring.submit_recv(b, sides[("b", n)][1], ("b", n))
            ring.submit_send(a, MESSAGE, ("send", "a", n, 0))
        others = 2 * len(pairs)  # in flight besides the receives posted on the b sides
        sends = 1
        trips, started = 0, time.perf_counter()
        end = started + seconds
        stopping = False
        while True:
            for token, result, _ in ring.wait(None):
                if isinstance(result, OSError):
                    raise result
                if token[0] == "send":
                    others -= 1
                    continue
                sock, buf, initiator = sides[token]
                if initiator:
                    others -= 1
                else:
                    ring.submit_send(sock, bytes(buf[:result]), ("send", token, sends))
                    sends += 1
                    others += 1
                    ring.submit_recv(sock, buf, token)
                    continue
                trips += 1
                if not stopping and trips % 64 == 0 and time.perf_counter() >= end:
                    stopping = True
                if not stopping:
                    ring.submit_recv(sock, buf, token)
                    ring.submit_send(sock, MESSAGE, ("send", token, sends))
                    sends += 1
                    others += 2
            if stopping and not others:
                elapsed = time.perf_counter() - started
                for n in range(len(pairs)):
                    ring.cancel(("b", n))
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
    parser.add_argument("--pairs", default="1,64", help="socket pairs bouncing at once, comma-separated")
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
            chunk = os.urandom(1 << 20)  # PyPy's urandom returns short for 32 MiB at once
            for _ in range(FILE_SIZE >> 20):
                out.write(chunk)
        if os.path.getsize(path) != FILE_SIZE:
            raise AssertionError("the test file came out short")
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

    for count in (int(word) for word in args.pairs.split(",")):
        pairs = [socket.socketpair() for _ in range(count)]
        try:
            for a, b in pairs:
                a.setblocking(False)
                b.setblocking(False)
            cases = [
                ("epoll readiness + recv/send", lambda: pingpong_epoll(pairs, args.seconds)),
                ("uring.Ring recv/send", lambda: pingpong_ring(pairs, args.seconds)),
            ]
            report(f"ping-pong of {len(MESSAGE)} bytes over {count} socket pair(s) at once",
                   measure(cases, args.reps), "round trips/s")
        finally:
            for a, b in pairs:
                a.close()
                b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
