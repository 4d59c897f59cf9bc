"""poorio's echo servers, one per layer, and the same hand-written readiness loop on three multiplexers.

Run by ``benchmarks.servers`` (which holds the command line and the
peers' servers); each function listens, announces its port and serves
until the process ends.  Only public names are used -- ``poorio.run``,
``Group``, ``listen_tcp``, ``wait_readable``, ``EventSet``,
``poorio.platform.new_pool`` -- so the servers stay valid while the core
moves underneath them.

* ``poorio_fibers``: the documented way, IO objects in a ``Group``;
  ``poorio_fibers_uring``: the same on the ``uring`` backend;
  ``poorio_fibers_uring_ops``: there, each socket a ``ProactorStream``
  (receives and sends as io_uring operations, no readiness).
* ``poorio_rawfibers``: the seeds' YieldForIo pattern users write by hand:
  ``sock.recv`` until EAGAIN, then ``await poorio.wait_readable(sock)``.
* ``poorio_events``: event-set callbacks, no fibers.
* ``poorio_pool`` / ``poorio_pool_poll`` / ``selectors_loop``: one loop over
  ready (fd, flags) pairs, the platform layer alone.
"""

from __future__ import annotations

from .servers import BACKLOG, CHUNK, HOST, accepted, announce, listening_socket

# -- hand-written readiness loops: the platform layer alone ----------------------


def _readiness_loop(wait, add, modify, remove, readable: int, writable: int) -> None:
    """The whole server as one loop over ready (fd, flags) pairs.

    The same code runs over poorio's ``SocketIoPool`` and over the stdlib's
    ``selectors`` so the two multiplexers are compared with nothing else
    different.  A short write parks the rest and waits for writability.
    """
    lsock = listening_socket()
    lfd = lsock.fileno()
    add(lfd, readable)
    conns = {}  # fd -> socket
    pending = {}  # fd -> bytes not yet written back
    while True:
        for fd, flags in wait():
            if fd == lfd:
                for conn in accepted(lsock):
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

    The seeds' YieldForIo pattern: try the call, and only when it would
    block park the fiber until the kernel reports the socket ready.  The
    scheduler by itself: no IO objects, the same recv/send calls as the
    hand-written loops.
    """
    import poorio

    wait_readable, wait_writable, notify_closing = poorio.wait_readable, poorio.wait_writable, poorio.notify_closing

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
        lsock = listening_socket()
        async with poorio.Group() as group:
            while True:
                for conn in accepted(lsock):
                    group.spawn(handle, conn)
                await wait_readable(lsock)

    poorio.run(main, capacity=BACKLOG + 64)


def poorio_fibers(backend: str | None = None, wrap=None) -> None:
    """Fibers on poorio's IO objects, the documented way: ``listen_tcp``, ``accept``, ``read_some``/``write_all`` in a ``Group``.

    ``wrap``: turns each accepted stream into the stream to serve.
    """
    import poorio

    async def handle(stream):
        if wrap is not None:
            stream = wrap(stream)
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
        listener = await poorio.listen_tcp(HOST, 0, backlog=BACKLOG, nodelay=True)
        announce(listener.local_address[1])
        accept = listener.accept
        async with poorio.Group() as group:
            while True:
                group.spawn(handle, await accept())

    poorio.run(main, capacity=BACKLOG + 64, backend=backend)


def poorio_fibers_uring() -> None:
    """The same fibers on the ``uring`` backend: readiness from the ring's one-shot polls, re-armed."""
    poorio_fibers("uring")


def poorio_fibers_uring_ops() -> None:
    """The same fibers on the ``uring`` backend, each socket a ``ProactorStream``: receives and sends as operations."""
    import os

    from poorio.streams import ProactorStream

    def as_operations(accepted):
        fd = os.dup(accepted.fileno())  # the accepted stream keeps no registration once closed
        accepted.close()
        os.set_blocking(fd, True)  # the kernel waits inside the operation, not with EAGAIN
        return ProactorStream(fd)

    poorio_fibers("uring", as_operations)


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

    lsock = listening_socket()

    def on_accept(ev):
        for conn in accepted(lsock):
            add("R", conn, reader(conn))

    add("R", lsock, on_accept)
    for ev in events(True):
        ev.context(ev)
