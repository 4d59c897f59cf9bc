"""The echo servers the suite measures, one per implementation, each run in a process of its own.

``python -m benchmarks.servers IMPL [MAX_SECONDS]`` listens on 127.0.0.1 on
a port the kernel picks, prints ``PORT <n>`` and echoes every byte it reads
back to its sender until it is terminated -- or until ``MAX_SECONDS`` pass
(``signal.alarm``), so a lost runner never leaves a server behind.  With
``POORIO_BENCH_PROFILE=FILE`` it installs cProfile, switched on by SIGUSR1
(so the profile covers the steady state, not the start) and written to FILE
on SIGTERM (``python -m benchmarks profile`` does this).

This module holds the peers' servers (asyncio, uvloop, trio, curio) and the
table of every server; poorio's own are in ``servers_poorio``.

Every server does the same work: read up to 64 KiB, write it all back, with
``TCP_NODELAY`` set and a listen backlog of 4096 (1,000 clients connect at
once).  Each implementation imports only what it uses, inside its function,
so a server's memory and start-up are its own.
"""

from __future__ import annotations

import signal
import socket
import sys

CHUNK = 65536
BACKLOG = 4096
HOST = "127.0.0.1"


def announce(port: int) -> None:
    print(f"PORT {port}", flush=True)


def listening_socket() -> socket.socket:
    """A non-blocking listener on a kernel-chosen loopback port, announced."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((HOST, 0))
    lsock.listen(BACKLOG)
    lsock.setblocking(False)
    announce(lsock.getsockname()[1])
    return lsock


def accepted(lsock: socket.socket):
    """Accept every pending connection: yields non-blocking, NODELAY sockets."""
    while True:
        try:
            conn, _ = lsock.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        yield conn


# -- asyncio and the loops that plug into it -----------------------------------


def _asyncio_streams(new_loop) -> None:
    import asyncio

    async def handle(reader, writer):
        read, write, drain = reader.read, writer.write, writer.drain
        try:
            while True:
                data = await read(CHUNK)
                if not data:
                    break
                write(data)
                await drain()
        except ConnectionError:
            pass
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, HOST, 0, backlog=BACKLOG)
        announce(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    _run_on(new_loop, main)


def _asyncio_protocol(new_loop) -> None:
    import asyncio

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.write = transport.write

        def data_received(self, data):
            self.write(data)

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, HOST, 0, backlog=BACKLOG)
        announce(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    _run_on(new_loop, main)


def _run_on(new_loop, main) -> None:
    import asyncio

    loop = new_loop() if new_loop else asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(main())


def _uvloop():
    import uvloop

    return uvloop.new_event_loop


def _poorio_aio():
    import poorio.aio

    return poorio.aio.new_event_loop


def asyncio_streams() -> None:
    _asyncio_streams(None)


def asyncio_protocol() -> None:
    _asyncio_protocol(None)


def uvloop_streams() -> None:
    _asyncio_streams(_uvloop())


def uvloop_protocol() -> None:
    _asyncio_protocol(_uvloop())


def poorio_aio_streams() -> None:
    _asyncio_streams(_poorio_aio())


def poorio_aio_protocol() -> None:
    _asyncio_protocol(_poorio_aio())


# -- trio ----------------------------------------------------------------------


def trio_streams() -> None:
    import trio

    async def handle(stream):
        receive, send = stream.receive_some, stream.send_all
        try:
            while True:
                data = await receive(CHUNK)
                if not data:
                    break
                await send(data)
        except trio.BrokenResourceError:
            pass

    async def main():
        listeners = await trio.open_tcp_listeners(0, host=HOST, backlog=BACKLOG)
        announce(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(handle, listeners)

    trio.run(main)


# -- curio ---------------------------------------------------------------------


def curio_streams() -> None:
    import curio
    from curio import network

    async def handle(client, addr):
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        recv, sendall = client.recv, client.sendall
        try:
            while True:
                data = await recv(CHUNK)
                if not data:
                    break
                await sendall(data)
        except ConnectionError:
            pass

    async def main():
        sock = network.tcp_server_socket(HOST, 0, backlog=BACKLOG)
        announce(sock.getsockname()[1])
        await network.run_server(sock, handle)

    curio.run(main)


# -- the table, and the command line ----------------------------------------------


def _impls() -> dict:
    from . import servers_poorio as p

    return {
        "asyncio-streams": asyncio_streams,
        "asyncio-protocol": asyncio_protocol,
        "uvloop-streams": uvloop_streams,
        "uvloop-protocol": uvloop_protocol,
        "trio": trio_streams,
        "curio": curio_streams,
        "selectors-loop": p.selectors_loop,
        "poorio-pool": p.poorio_pool,
        "poorio-pool-poll": p.poorio_pool_poll,
        "poorio-rawfibers": p.poorio_rawfibers,
        "poorio-events": p.poorio_events,
        "poorio-fibers": p.poorio_fibers,
        "poorio-fibers-uring": p.poorio_fibers_uring,
        "poorio-fibers-uring-ops": p.poorio_fibers_uring_ops,
        "poorio-aio-streams": poorio_aio_streams,
        "poorio-aio-protocol": poorio_aio_protocol,
    }


def _profiled(impl, path: str) -> None:
    """Run ``impl`` with cProfile switched on by SIGUSR1; SIGTERM writes the stats to ``path``."""
    import cProfile

    profile = cProfile.Profile()

    def start(signum, frame):
        profile.enable()

    def stop(signum, frame):
        profile.disable()
        profile.dump_stats(path)
        raise SystemExit(0)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGTERM, stop)
    impl()


def main(argv) -> None:
    import os

    impl = _impls()[argv[1]]
    signal.alarm(int(argv[2]) if len(argv) > 2 else 300)
    profile_to = os.environ.get("POORIO_BENCH_PROFILE")
    if profile_to:
        _profiled(impl, profile_to)
    else:
        impl()


if __name__ == "__main__":
    main(sys.argv)
