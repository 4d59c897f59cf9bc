"""Actors: Emilua's "Hello" / " World" tutorial with a process actor, then a CPU-bound job over one process actor per core.

Part one is the ``spawn_vm`` example of the Emilua tutorial: the main actor
writes "Hello", a second actor -- here a fresh Python interpreter -- waits a
moment and writes " World".  (As in the tutorial, the sleep only shows the
two running side by side: never order actors with timers.)  The main actor
joins the other, as no actor outlives the one that spawned it.

Part two counts the primes below a limit with one process actor per core:
each worker takes ``(lo, hi)`` jobs from its inbox and sends counts back,
until it receives ``None``.  Python runs one thread of bytecode at a time
per interpreter, so processes -- not threads -- are what use every core.
Both workers are functions of this very file: a process actor imports its
target by name, and this script is loaded there as ``__poorio_main__``, so
its ``if __name__ == "__main__":`` block does not run again.

Run it: ``python demos/actors.py [limit]``.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import poorio  # noqa: E402 (after the path tweak, so it runs from a checkout)
from poorio import actors  # noqa: E402


async def world() -> None:
    await poorio.sleep(0.1)
    sys.stdout.write(" World\n")
    sys.stdout.flush()


def count_primes(lo: int, hi: int) -> int:
    """Primes in ``[lo, hi)``, by trial division: deliberately CPU-bound."""
    count = 0
    for n in range(max(lo, 2), hi):
        if n % 2 == 0:
            count += n == 2
            continue
        d = 3
        while d * d <= n:
            if n % d == 0:
                break
            d += 2
        else:
            count += 1
    return count


async def prime_worker() -> int:
    """Count the primes of each ``(lo, hi)`` job received; answer ``(lo, count)``; stop at None."""
    boss = actors.parent()
    jobs = 0
    while True:
        job = await actors.receive()
        if job is None:
            return jobs
        lo, hi = job
        await boss.send((lo, count_primes(lo, hi)))
        jobs += 1


async def main(limit: int) -> None:
    hello = actors.spawn(world, kind="process")
    sys.stdout.write("Hello")
    sys.stdout.flush()
    await hello.join()

    cores = os.cpu_count() or 1
    start = time.monotonic()
    workers = [actors.spawn(prime_worker, kind="process") for _ in range(cores)]
    step = max(limit // (cores * 8), 1)  # a few jobs per worker, so a slow one holds nobody up
    jobs = [(lo, min(lo + step, limit)) for lo in range(0, limit, step)]
    total = 0
    async with poorio.Group() as group:
        async def feed() -> None:
            for i, job in enumerate(jobs):  # a full inbox makes this wait: back-pressure
                await workers[i % cores].send(job)
            for worker in workers:
                await worker.send(None)

        group.spawn(feed)
        for _ in jobs:
            _lo, count = await actors.receive()
            total += count
    done = [await worker.join() for worker in workers]
    elapsed = time.monotonic() - start
    print(f"{total} primes below {limit}, counted by {cores} process actors in {elapsed:.2f} s")
    print(f"jobs per actor: {done}")


if __name__ == "__main__":
    poorio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
