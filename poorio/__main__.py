"""``python -m poorio``: say what poorio found on this machine, then show it working.

``python -m poorio``        platform facts, a pool ping-pong on every backend,
                            then fibers: an echo server, clients and a channel
``python -m poorio info``   platform facts only
"""

from __future__ import annotations

import os
import socket
import sys
import time

from . import __version__
from . import platform as _platform
from .platform import MULTIARCH, POINTER_SIZE, READABLE


def info() -> list[tuple[str, str]]:
    """The facts ``python -m poorio info`` prints, as (label, value) pairs."""
    impl = sys.implementation
    version = ".".join(str(part) for part in sys.version_info[:3])
    try:
        chosen = _platform.default_backend()
    except Exception as exc:  # a bad POORIO_BACKEND: show why instead of a traceback
        chosen = f"none ({exc})"
    return [
        ("poorio", __version__),
        ("python", f"{impl.name} {version} ({sys.executable})"),
        ("os", f"{sys.platform} ({os.uname().sysname} {os.uname().release})" if hasattr(os, "uname") else sys.platform),
        ("architecture", f"{MULTIARCH}, {POINTER_SIZE * 8}-bit pointers, {sys.byteorder}-endian"),
        ("backends known", ", ".join(_platform.known_backends())),
        ("backends usable", ", ".join(_platform.backends()) or "none"),
        ("backend chosen", chosen + (" (POORIO_BACKEND)" if os.environ.get("POORIO_BACKEND") else "")),
        ("default capacity", f"{_platform.default_capacity()} fds (the fd limit)"),
    ]


def print_info() -> None:
    for label, value in info():
        print(f"{label + ':':18}{value}")


def ping_pong(backend: str, rounds: int = 10_000) -> float:
    """Bounce one byte across a socketpair ``rounds`` times through a pool.

    Each side only reads when the pool says it is readable -- the whole idea
    of readiness IO in a dozen lines.  Returns round trips per second.
    """
    left, right = socket.socketpair()
    with left, right, _platform.new_pool(4, backend) as pool:
        left.setblocking(False)
        right.setblocking(False)
        pool.add(left, READABLE)
        pool.add(right, READABLE)
        peer = {left.fileno(): right, right.fileno(): left}
        own = {left.fileno(): left, right.fileno(): right}
        left.send(b"!")
        trips = 0
        started = time.perf_counter()
        while trips < rounds:
            for fd, _flags in pool.cycle(1.0):
                data = own[fd].recv(1)
                peer[fd].send(data)
                trips += 1
        elapsed = time.perf_counter() - started
        pool.remove(left)
        pool.remove(right)
    return rounds / elapsed


async def echo_demo(clients: int = 20, rounds: int = 200) -> tuple[int, float]:
    """An echo server in fibers, ``clients`` clients, results gathered on a channel.

    Returns (round trips, seconds).  Every reply is checked byte for byte.
    """
    from . import Channel, Group, fail_after, listen_tcp, connect_tcp

    async def serve_one(stream) -> None:
        async with stream:
            while True:
                data = await stream.read_some()
                if not data:
                    return
                await stream.write_all(data)

    async def client(port: int, ident: int, done: Channel) -> None:
        async with await connect_tcp("127.0.0.1", port) as stream:
            for n in range(rounds):
                message = b"client %d says %d\n" % (ident, n)
                await stream.write_all(message)
                if await stream.read_exactly(len(message)) != message:
                    raise RuntimeError(f"client {ident} got a corrupted echo")
        await done.put(ident)

    started = time.perf_counter()
    with fail_after(60):
        async with await listen_tcp("127.0.0.1", 0) as listener:
            port = listener.local_address[1]
            async with Group() as server:

                async def accept_loop() -> None:
                    while True:
                        server.spawn(serve_one, await listener.accept())

                server.spawn(accept_loop)
                done = Channel()
                async with Group() as group:
                    for ident in range(clients):
                        group.spawn(client, port, ident, done)
                    finished = {await done.get() for _ in range(clients)}
                if finished != set(range(clients)):
                    raise RuntimeError("a client never reported back")
                server.cancel_scope.cancel()
    return clients * rounds, time.perf_counter() - started


def demo() -> None:
    from . import run

    print_info()
    print()
    for backend in _platform.backends():
        rate = ping_pong(backend)
        print(f"{backend:>6}: 10,000 socketpair ping-pongs through SocketIoPool, {rate:,.0f} hops/s")
    print()
    for backend in _platform.backends():
        trips, seconds = run(echo_demo, backend=backend)
        print(
            f"{backend:>6}: fibers -- echo server + 20 TCP clients, {trips:,} checked round trips "
            f"in {seconds:.2f} s ({trips / seconds:,.0f}/s), results gathered on a Channel"
        )


def main(argv: list[str]) -> int:
    if argv[:1] == ["info"]:
        print_info()
        return 0
    if argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    demo()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
