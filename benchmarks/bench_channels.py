"""Channel ping-pong: round trips per second between two tasks, per implementation.

Runs inside a worker subprocess.  Two tasks bounce one message back and
forth over two channels, n round trips: asyncio.Queue (unbounded) (on asyncio's loop,
uvloop's and poorio.aio's), trio memory channels (unbuffered, trio's usual
choice) and poorio's ``Channel`` (rendezvous) and ``Queue(1)``.  Measured in
steady state: warm-up passes until three agree, then two halves.
"""

from __future__ import annotations

import time

from . import steady
from .bench_sched import _runner


def _asyncio_main():
    import asyncio

    async def main(n):
        ping, pong = asyncio.Queue(), asyncio.Queue()

        async def echo():
            get, put = ping.get, pong.put_nowait
            for _ in range(n):
                put(await get())

        task = asyncio.get_running_loop().create_task(echo())
        t0 = time.perf_counter()
        put, get = ping.put_nowait, pong.get
        for i in range(n):
            put(i)
            await get()
        elapsed = time.perf_counter() - t0
        await task
        return elapsed

    return main


def _trio_main():
    import trio

    async def main(n):
        ping_send, ping_recv = trio.open_memory_channel(0)
        pong_send, pong_recv = trio.open_memory_channel(0)

        async def echo():
            get, put = ping_recv.receive, pong_send.send
            for _ in range(n):
                await put(await get())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo)
            t0 = time.perf_counter()
            put, get = ping_send.send, pong_recv.receive
            for i in range(n):
                await put(i)
                await get()
            elapsed = time.perf_counter() - t0
        return elapsed

    return main


def _poorio_main(kind: str):
    import poorio
    from poorio import Channel, Queue

    spawn = poorio.spawn

    def new():
        return Channel() if kind == "channel" else Queue(1)

    async def main(n):
        ping, pong = new(), new()

        async def echo():
            get, put = ping.get, pong.put
            for _ in range(n):
                await put(await get())

        fiber = spawn(echo)
        t0 = time.perf_counter()
        put, get = ping.put, pong.get
        for i in range(n):
            await put(i)
            await get()
        elapsed = time.perf_counter() - t0
        await fiber.join()
        return elapsed

    return main


def _main(impl: str):
    if impl == "trio":
        return "trio", _trio_main()
    if impl == "poorio-channel":
        return "poorio", _poorio_main("channel")
    if impl == "poorio-queue":
        return "poorio", _poorio_main("queue")
    return impl, _asyncio_main()


def pingpong(impl: str, n: int) -> dict:
    """Round trips per second of one message between two tasks."""
    loop, main = _main(impl)
    run = _runner(loop)
    w = steady.worker_window(lambda k: run(main, k), n, max(1, n // 10))
    return {**w, "round_trips_per_s": w["rate"]}
