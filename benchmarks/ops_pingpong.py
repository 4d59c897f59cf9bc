"""Channel ping-pong round trips per second: poorio Channel and Queue against asyncio.Queue.

A quick side-by-side, not a test: ``python -m benchmarks.ops_pingpong [n] [repeats]``.
Two tasks bounce an int back and forth over two channels; the best of
``repeats`` runs is reported for each, and poorio's ratio to asyncio.
"""

from __future__ import annotations

import asyncio
import sys
import time

import poorio as sched
from poorio.channel import Channel, Queue


def poorio_pingpong(n: int, make) -> float:
    async def main():
        ping, pong = make(), make()

        async def echo():
            async for value in ping:
                await pong.put(value)

        sched.spawn(echo)
        start = time.perf_counter()
        for i in range(n):
            await ping.put(i)
            await pong.get()
        elapsed = time.perf_counter() - start
        ping.close()
        return elapsed

    return n / sched.run(main)


def asyncio_pingpong(n: int) -> float:
    async def main():
        ping, pong = asyncio.Queue(), asyncio.Queue()

        async def echo():
            while True:
                await pong.put(await ping.get())

        task = asyncio.ensure_future(echo())
        start = time.perf_counter()
        for i in range(n):
            await ping.put(i)
            await pong.get()
        elapsed = time.perf_counter() - start
        task.cancel()
        return elapsed

    return n / asyncio.run(main())


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    results = {
        "asyncio.Queue": max(asyncio_pingpong(n) for _ in range(repeats)),
        "poorio Channel": max(poorio_pingpong(n, Channel) for _ in range(repeats)),
        "poorio Queue(1)": max(poorio_pingpong(n, lambda: Queue(1)) for _ in range(repeats)),
    }
    base = results["asyncio.Queue"]
    print(f"{sys.implementation.name} {sys.version.split()[0]}, {n} round trips, best of {repeats}")
    for name, rate in results.items():
        print(f"  {name:16} {rate:12,.0f} round trips/s  {rate / base:5.2f}x asyncio")


if __name__ == "__main__":
    main()
