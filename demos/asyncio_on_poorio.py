"""Stock asyncio running on poorio's backends: an echo server, many clients, a subprocess, a timeout.

    python3 demos/asyncio_on_poorio.py             # the tour, a couple of seconds
    python3 demos/asyncio_on_poorio.py --compare   # echo round trips/s: stdlib selector vs poorio's

Nothing below knows about poorio except the one line that runs ``main``:
``poorio.aio.run(main())`` instead of ``asyncio.run(main())``.  That is the
point -- every asyncio library runs unchanged on poorio's ctypes epoll,
kqueue, WSAPoll or poll(2) (``POORIO_BACKEND=poll`` picks one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import selectors
import socket
import sys
import time

try:
    import poorio.aio
except ImportError:  # run from a checkout without installing: use the package beside this folder
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import poorio.aio

from poorio.platform import backends
from poorio.selector import selector_classes


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Send every line back until the client hangs up."""
    while True:
        line = await reader.readline()
        if not line:
            break
        writer.write(line)
        await writer.drain()
    writer.close()


async def client(port: int, rounds: int, tag: str) -> int:
    """Do ``rounds`` echo round trips; return how many came back intact."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    good = 0
    for i in range(rounds):
        line = f"{tag} {i}\n".encode()
        writer.write(line)
        good += await reader.readline() == line
    writer.close()
    await writer.wait_closed()
    return good


async def echo_load(clients: int, rounds: int) -> float:
    """Seconds for ``clients`` concurrent connections to do ``rounds`` round trips each."""
    # A backlog for every client: a full accept queue drops SYNs, and the
    # client's kernel retries only after a whole second.
    server = await asyncio.start_server(echo, "127.0.0.1", 0, backlog=max(100, clients))
    port = server.sockets[0].getsockname()[1]
    start = time.perf_counter()
    results = await asyncio.gather(*(client(port, rounds, f"c{n}") for n in range(clients)))
    elapsed = time.perf_counter() - start
    server.close()
    await server.wait_closed()
    if sum(results) != clients * rounds:
        raise RuntimeError(f"lost echoes: {sum(results)} of {clients * rounds}")
    return elapsed


async def tour() -> None:
    selector = asyncio.get_running_loop()._selector  # the one peek behind asyncio's back
    print(f"asyncio on poorio: {selector.backend} backend, room for {selector.capacity} fds")

    elapsed = await echo_load(clients=200, rounds=20)
    print(f"  echo: 200 concurrent clients x 20 round trips in {elapsed * 1000:.0f} ms")

    if sys.platform == "win32":  # asyncio's selector loops there watch sockets only
        print("  subprocess: not on Windows (asyncio's selector loop has no pipes there)")
    else:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; print(sys.stdin.read()[::-1])",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate(b"olleh morf a ssecorpbus")
        print(f"  subprocess: exit {proc.returncode}, said {out.decode().strip()!r}")

    try:
        await asyncio.wait_for(asyncio.sleep(10), timeout=0.1)
    except asyncio.TimeoutError:
        print("  wait_for: a 10 s sleep timed out after 0.1 s, as asked")


def select_cost(make_selector, calls: int = 20000) -> float:
    """Microseconds one ``select(0)`` costs with one ready socket: the per-wake-up overhead."""
    a, b = socket.socketpair()
    selector = make_selector()
    try:
        selector.register(a, selectors.EVENT_WRITE)
        start = time.perf_counter()
        for _ in range(calls):
            selector.select(0)
        return (time.perf_counter() - start) / calls * 1e6
    finally:
        selector.close()
        a.close()
        b.close()


def compare(clients: int, rounds: int, repeat: int, calls: int) -> None:
    """The same echo load on asyncio's own loop and on poorio's, interleaved, best of ``repeat``."""
    contenders = [("asyncio (stdlib selectors)", selectors.DefaultSelector)]
    contenders += [(f"poorio.aio ({cls.BACKEND})", cls) for cls in selector_classes()]
    print(f"{clients} clients x {rounds} round trips, best of {repeat}, on {sys.implementation.name} {sys.version.split()[0]}")
    best = {name: float("inf") for name, _ in contenders}
    for _ in range(repeat):  # interleaved, so a noisy moment hurts every contender alike
        for name, make_selector in contenders:
            loop = asyncio.SelectorEventLoop(make_selector())
            try:
                best[name] = min(best[name], loop.run_until_complete(echo_load(clients, rounds)))
            finally:
                loop.close()
    baseline = clients * rounds / best[contenders[0][0]]
    for name, make_selector in contenders:
        rate = clients * rounds / best[name]
        cost = min(select_cost(make_selector, calls) for _ in range(repeat))
        print(f"  {name:28} {rate:9.0f} round trips/s ({rate / baseline:.2f}x)   select(0): {cost:6.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="store_true", help="measure echo throughput against the stdlib selector")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20000, help="select(0) calls timed per contender")
    args = parser.parse_args()
    if args.compare:
        compare(args.clients, args.rounds, args.repeat, args.calls)
    else:
        poorio.aio.run(tour())
        print(f"  (usable backends here: {', '.join(backends())}; POORIO_BACKEND=poll picks one)")


if __name__ == "__main__":
    main()
