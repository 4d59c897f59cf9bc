"""The echo servers the suite measures, one per implementation, each run in a process of its own.

``python -m benchmarks.servers IMPL [MAX_SECONDS]`` listens on 127.0.0.1 on
a port the kernel picks, prints ``PORT <n>`` and echoes every byte it reads
back to its sender until it is terminated -- or until ``MAX_SECONDS`` pass
(``signal.alarm``), so a lost runner never leaves a server behind.  With
``POORIO_BENCH_PROFILE=FILE`` it runs under cProfile and writes the stats
to FILE when it is terminated (``python -m benchmarks profile`` does this).

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


def _announce(port: int) -> None:
    print(f"PORT {port}", flush=True)


def _listening_socket() -> socket.socket:
    """A non-blocking listener on a kernel-chosen loopback port, announced."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((HOST, 0))
    lsock.listen(BACKLOG)
    lsock.setblocking(False)
    _announce(lsock.getsockname()[1])
    return lsock


def _accepted(lsock: socket.socket):
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
        _announce(server.sockets[0].getsockname()[1])
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
        _announce(server.sockets[0].getsockname()[1])
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
        _announce(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(handle, listeners)

    trio.run(main)


# -- hand-written readiness loops: the platform layer alone ----------------------


def _readiness_loop(wait, add, modify, remove, readable: int, writable: int) -> None:
    """The whole server as one loop over ready (fd, flags) pairs.

    The same code runs over poorio's ``SocketIoPool`` and over the stdlib's
    ``selectors`` so the two multiplexers are compared with nothing else
    different.  A short write parks the rest and waits for writability.
    """
    lsock = _listening_socket()
    lfd = lsock.fileno()
    add(lfd, readable)
    conns = {}  # fd -> socket
    pending = {}  # fd -> bytes not yet written back
    while True:
        for fd, flags in wait():
            if fd == lfd:
                for conn in _accepted(lsock):
                    add(conn.fileno(), readable)
                    conns[conn.fileno()] = conn
                continue
            sock = conns.get(fd)
            if sock is None:
                continue
            rest = pending.get(fd)
            if rest is not None:  # registered for writability only: flush
                data = rest
            else:
                try:
                    data = sock.recv(CHUNK)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
            if data:
                try:
                    sent = sock.send(data)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    data = b""
            if not data:
                remove(fd)
                pending.pop(fd, None)
                del conns[fd]
                sock.close()
            elif sent < len(data):
                pending[fd] = data[sent:]
                if rest is None:
                    modify(fd, writable)
            elif rest is not None:
                del pending[fd]
                modify(fd, readable)


def poorio_pool() -> None:
    from poorio.platform import READABLE, WRITABLE, new_pool

    pool = new_pool(BACKLOG + 64)
    cycle = pool.cycle
    _readiness_loop(lambda: cycle(None), pool.add, pool.modify, pool.remove, READABLE, WRITABLE)


def poorio_pool_poll() -> None:
    from poorio.platform import READABLE, WRITABLE, new_pool

    pool = new_pool(BACKLOG + 64, "poll")
    cycle = pool.cycle
    _readiness_loop(lambda: cycle(None), pool.add, pool.modify, pool.remove, READABLE, WRITABLE)


def selectors_loop() -> None:
    import selectors

    sel = selectors.DefaultSelector()
    select = sel.select

    def wait():
        return [(key.fd, mask) for key, mask in select()]

    _readiness_loop(wait, sel.register, sel.modify, sel.unregister, selectors.EVENT_READ, selectors.EVENT_WRITE)


# -- poorio's own layers ----------------------------------------------------------


def poorio_rawfibers() -> None:
    """Fibers on ``wait_readable``/``wait_writable`` and raw non-blocking sockets.

    Measures the scheduler by itself: no IO objects, the same recv/send
    calls as the hand-written loops.  Reads are tried first; a fiber parks
    only on EAGAIN.
    """
    from . import poorio_api

    wait_readable, wait_writable = poorio_api.get("wait_readable"), poorio_api.get("wait_writable")
    spawn, notify_closing = poorio_api.get("spawn"), poorio_api.get("notify_closing")

    async def handle(sock):
        recv, send = sock.recv, sock.send
        try:
            while True:
                try:
                    data = recv(CHUNK)
                except BlockingIOError:
                    await wait_readable(sock)
                    continue
                if not data:
                    break
                while data:
                    try:
                        sent = send(data)
                    except BlockingIOError:
                        await wait_writable(sock)
                        continue
                    data = data[sent:]
        except ConnectionError:
            pass
        finally:
            notify_closing(sock)
            sock.close()

    async def main():
        lsock = _listening_socket()
        while True:
            for conn in _accepted(lsock):
                spawn(handle, conn)
            await wait_readable(lsock)

    poorio_api.get("run")(main, capacity=BACKLOG + 64)


def poorio_fibers() -> None:
    """Fibers on poorio's IO objects: ``listen_tcp``, ``Listener.accept``, ``read_some``/``write_all``."""
    from poorio.net import listen_tcp

    from . import poorio_api

    spawn = poorio_api.get("spawn")

    async def handle(stream):
        read_some, write_all = stream.read_some, stream.write_all
        try:
            while True:
                data = await read_some(CHUNK)
                if not data:
                    break
                await write_all(data)
        except OSError:
            pass
        finally:
            stream.close()

    async def main():
        listener = await listen_tcp(HOST, 0, backlog=BACKLOG, nodelay=True)
        _announce(listener.local_address[1])
        accept = listener.accept
        while True:
            spawn(handle, await accept())

    poorio_api.get("run")(main, capacity=BACKLOG + 64)


def poorio_events() -> None:
    """Callbacks on an ``EventSet``, no fibers: persistent read events, contexts called in a loop."""
    from poorio.events import EventSet

    events = EventSet(capacity=BACKLOG + 64)
    add, delete = events.add, events.delete

    def reader(sock):
        recv, send = sock.recv, sock.send

        def on_read(ev):
            try:
                data = recv(CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                delete(ev.id)
                sock.close()
                return
            try:
                sent = send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                delete(ev.id)
                sock.close()
                return
            if sent < len(data):  # short write: stop reading until the rest is out
                delete(ev.id)
                add("W", sock, writer(sock, data[sent:]))

        return on_read

    def writer(sock, rest):
        def on_write(ev):
            nonlocal rest
            try:
                sent = sock.send(rest)
            except BlockingIOError:
                return
            except OSError:
                delete(ev.id)
                sock.close()
                return
            rest = rest[sent:]
            if not rest:
                delete(ev.id)
                add("R", sock, reader(sock))

        return on_write

    lsock = _listening_socket()

    def on_accept(ev):
        for conn in _accepted(lsock):
            add("R", conn, reader(conn))

    add("R", lsock, on_accept)
    for ev in events(True):
        ev.context(ev)


IMPLS = {
    "asyncio-streams": asyncio_streams,
    "asyncio-protocol": asyncio_protocol,
    "uvloop-streams": uvloop_streams,
    "uvloop-protocol": uvloop_protocol,
    "trio": trio_streams,
    "selectors-loop": selectors_loop,
    "poorio-pool": poorio_pool,
    "poorio-pool-poll": poorio_pool_poll,
    "poorio-rawfibers": poorio_rawfibers,
    "poorio-events": poorio_events,
    "poorio-fibers": poorio_fibers,
    "poorio-aio-streams": poorio_aio_streams,
    "poorio-aio-protocol": poorio_aio_protocol,
}


def _profiled(impl, path: str) -> None:
    """Run ``impl`` under cProfile; SIGTERM (the runner's stop) writes the stats to ``path``."""
    import cProfile

    profile = cProfile.Profile()

    def stop(signum, frame):
        profile.disable()
        profile.dump_stats(path)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    profile.enable()
    impl()


def main(argv) -> None:
    import os

    impl = IMPLS[argv[1]]
    signal.alarm(int(argv[2]) if len(argv) > 2 else 300)
    profile_to = os.environ.get("POORIO_BENCH_PROFILE")
    if profile_to:
        _profiled(impl, profile_to)
    else:
        impl()


if __name__ == "__main__":
    main(sys.argv)
