"""A quick side-by-side of poorio fibers and asyncio: sleep(0) switches per second, spawn+join of 100,000.

Not a test and not the full benchmark suite (``python -m benchmarks``):
one process, best of three, each library in its own plain idiom.
Run it: ``python benchmarks/quick_fibers.py`` (also under ``pypy3``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import poorio as fibers  # noqa: E402
import poorio as traps  # noqa: E402

SWITCH_FIBERS = 10
SWITCHES_EACH = 20_000
SPAWNED = 100_000


def best_of(n, fn):
    return min(fn() for _ in range(n))


def poorio_switches() -> float:
    async def spinner():
        for _ in range(SWITCHES_EACH):
            await traps.sleep(0)

    async def main():
        start = time.perf_counter()
        fs = [fibers.spawn(spinner) for _ in range(SWITCH_FIBERS)]
        for f in fs:
            await f.join()
        return time.perf_counter() - start

    return fibers.run(main)


def asyncio_switches() -> float:
    async def spinner():
        for _ in range(SWITCHES_EACH):
            await asyncio.sleep(0)

    async def main():
        start = time.perf_counter()
        await asyncio.gather(*[spinner() for _ in range(SWITCH_FIBERS)])
        return time.perf_counter() - start

    return asyncio.run(main())


def poorio_spawn_join() -> float:
    async def child(i):
        return i

    async def main():
        start = time.perf_counter()
        fs = [fibers.spawn(child, i) for i in range(SPAWNED)]
        for f in fs:
            await f.join()
        return time.perf_counter() - start

    return fibers.run(main)


def asyncio_spawn_join() -> float:
    async def child(i):
        return i

    async def main():
        start = time.perf_counter()
        ts = [asyncio.create_task(child(i)) for i in range(SPAWNED)]
        for t in ts:
            await t
        return time.perf_counter() - start

    return asyncio.run(main())


def main() -> None:
    switches = SWITCH_FIBERS * SWITCHES_EACH
    p, a = best_of(3, poorio_switches), best_of(3, asyncio_switches)
    print(f"sleep(0) switches/s: poorio {switches / p:,.0f}  asyncio {switches / a:,.0f}  ratio {a / p:.2f}x")
    p, a = best_of(3, poorio_spawn_join), best_of(3, asyncio_spawn_join)
    print(f"spawn+join {SPAWNED:,}: poorio {p:.3f}s  asyncio {a:.3f}s  ratio {a / p:.2f}x")


if __name__ == "__main__":
    main()
