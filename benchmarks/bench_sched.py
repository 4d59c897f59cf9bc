"""Scheduler scenarios: switches, spawn+join, many concurrent sleeps -- per implementation.

Runs inside a worker subprocess.  Every scenario is written three times,
plainly, in each library's own idiom: asyncio (also run on uvloop's loop and
on ``poorio.aio``'s), trio, and poorio fibers (public names only).  Rates
are taken in steady state (``steady.worker_window``): warm-up passes until
three agree, then the window in two halves; the clock starts inside the
running loop, so creating the loop is not counted.  The sleeps scenario is
one timeline of a second, judged by its lateness, so it has no halves.
"""

from __future__ import annotations

import random
import resource
import time

from . import steady
from .machine import OthersCpu
from .memory import rss_bytes, tracemalloc_available


def _asyncio_runner(impl: str):
    """run(coroutine_function) on the event loop ``impl`` names."""
    import asyncio

    if impl == "asyncio":
        new_loop = asyncio.new_event_loop
    elif impl == "uvloop":
        import uvloop

        new_loop = uvloop.new_event_loop
    elif impl == "poorio-aio":
        import poorio.aio

        new_loop = poorio.aio.new_event_loop
    else:
        raise ValueError(impl)

    def run(fn, *args):
        loop = new_loop()
        try:
            return loop.run_until_complete(fn(*args))
        finally:
            loop.close()

    return run


def _runner(impl: str):
    if impl == "trio":
        import trio

        return trio.run
    if impl == "poorio":
        import poorio

        return poorio.run
    return _asyncio_runner(impl)


def _family(impl: str) -> str:
    return impl if impl in ("trio", "poorio") else "asyncio"


# -- sleep(0) switches -------------------------------------------------------------


def _switches_main(family: str):
    """An async function(n) -> seconds: two tasks each doing n sleep(0)."""
    if family == "asyncio":
        import asyncio

        async def loop(n):
            sleep = asyncio.sleep
            for _ in range(n):
                await sleep(0)

        async def main(n):
            t0 = time.perf_counter()
            await asyncio.gather(loop(n), loop(n))
            return time.perf_counter() - t0

    elif family == "trio":
        import trio

        async def loop(n):
            sleep = trio.sleep
            for _ in range(n):
                await sleep(0)

        async def main(n):
            t0 = time.perf_counter()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(loop, n)
                nursery.start_soon(loop, n)
            return time.perf_counter() - t0

    else:
        import poorio

        sleep, spawn = poorio.sleep, poorio.spawn

        async def loop(n):
            for _ in range(n):
                await sleep(0)

        async def main(n):
            t0 = time.perf_counter()
            a, b = spawn(loop, n), spawn(loop, n)
            await a.join()
            await b.join()
            return time.perf_counter() - t0

    return main


def switches(impl: str, n: int) -> dict:
    """Context switches per second: two tasks ping-ponging through sleep(0), n each in all."""
    run, main = _runner(impl), _switches_main(_family(impl))
    w = steady.worker_window(lambda k: run(main, k), n, max(1, n // 10))
    return {**w, "switches_per_s": 2 * w["rate"], "halves": [2 * h for h in w["halves"]]}


# -- spawn + join --------------------------------------------------------------------


def _spawn_main(family: str):
    """An async function(n) -> seconds: start n tasks that each yield once, join all."""
    if family == "asyncio":
        import asyncio

        async def child():
            await asyncio.sleep(0)

        async def main(n):
            t0 = time.perf_counter()
            create = asyncio.get_running_loop().create_task
            tasks = [create(child()) for _ in range(n)]
            for task in tasks:
                await task
            return time.perf_counter() - t0

    elif family == "trio":
        import trio

        async def child():
            await trio.sleep(0)

        async def main(n):
            t0 = time.perf_counter()
            async with trio.open_nursery() as nursery:
                start = nursery.start_soon
                for _ in range(n):
                    start(child)
            return time.perf_counter() - t0

    else:
        import poorio

        sleep, spawn = poorio.sleep, poorio.spawn

        async def child():
            await sleep(0)

        async def main(n):
            t0 = time.perf_counter()
            fibers = [spawn(child) for _ in range(n)]
            for fiber in fibers:
                await fiber.join()
            return time.perf_counter() - t0

    return main


def spawn_join(impl: str, n: int, traced: bool = True) -> dict:
    """Seconds to spawn and join n tasks; peak memory per task (RSS, and tracemalloc on CPython).

    The window is two runs of n tasks each (its halves); ``seconds`` is their mean.
    """
    run, main = _runner(impl), _spawn_main(_family(impl))
    before = rss_bytes()
    w = steady.worker_window(lambda k: run(main, k), 2 * n, max(1, n // 10))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = {**w, "seconds": w["seconds"] / 2, "rss_bytes_per_task": max(0, peak - before) / n}
    if traced and tracemalloc_available():
        import tracemalloc

        tracemalloc.start()
        run(main, n)
        result["traced_bytes_per_task"] = tracemalloc.get_traced_memory()[1] / n
        tracemalloc.stop()
    return result


# -- many concurrent sleeps (sleepsort) ------------------------------------------------


def _sleeps_main(family: str):
    """An async function(delays) -> (finish seconds, sorted lateness list)."""
    if family == "asyncio":
        import asyncio

        async def main(delays):
            late = []
            clock = time.perf_counter

            async def sleeper(delay, target):
                await asyncio.sleep(delay)
                late.append(clock() - target)

            t0 = clock()
            create = asyncio.get_running_loop().create_task
            tasks = [create(sleeper(d, t0 + d)) for d in delays]
            for task in tasks:
                await task
            return clock() - t0, late

    elif family == "trio":
        import trio

        async def main(delays):
            late = []
            clock = time.perf_counter

            async def sleeper(delay, target):
                await trio.sleep(delay)
                late.append(clock() - target)

            t0 = clock()
            async with trio.open_nursery() as nursery:
                for d in delays:
                    nursery.start_soon(sleeper, d, t0 + d)
            return clock() - t0, late

    else:
        import poorio

        sleep, spawn = poorio.sleep, poorio.spawn

        async def main(delays):
            late = []
            clock = time.perf_counter

            async def sleeper(delay, target):
                await sleep(delay)
                late.append(clock() - target)

            t0 = clock()
            fibers = [spawn(sleeper, d, t0 + d) for d in delays]
            for fiber in fibers:
                await fiber.join()
            return clock() - t0, late

    return main


def sleeps(impl: str, n: int, longest: float = 1.0) -> dict:
    """n concurrent sleeps of random length in [0, longest): finish time and lateness."""
    run, main = _runner(impl), _sleeps_main(_family(impl))
    rng = random.Random(9)
    run(main, [rng.random() * longest / 10 for _ in range(max(1, n // 10))])
    delays = [rng.random() * longest for _ in range(n)]
    with OthersCpu() as others:
        finish, late = run(main, delays)
    late.sort()
    return {
        **({"others_cpu_pct": others.pct} if others.pct is not None else {}),
        "finish_s": finish,
        "late_p50_ms": late[len(late) // 2] * 1e3,
        "late_p99_ms": late[min(len(late) - 1, int(len(late) * 0.99))] * 1e3,
        "late_max_ms": late[-1] * 1e3,
    }
