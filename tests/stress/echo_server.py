"""The echo servers the soak drives, run as child processes: poorio's, and a stdlib-``selectors`` peer.

    python -m tests.stress.echo_server [--selectors] [--capacity N]

Prints ``READY <port>`` once listening, echoes every connection until the
client half-closes (then half-closes back), counts ``SIGUSR1`` signals, and
on ``SIGTERM`` prints one JSON line of what it saw and exits.  The poorio
server is the demo's shape (one fiber per client, ``read_some`` then
``write_all``); the selectors one does the same with a non-blocking buffer
per client, so the two can be compared under the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys

SIGNALS = [0]


def _on_usr1(signum, frame) -> None:
    SIGNALS[0] += 1


def _report(extra: dict) -> None:
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1
    print(json.dumps({"signals": SIGNALS[0], "fds": fds, **extra}), flush=True)


def serve_poorio(capacity) -> None:
    import poorio

    errors = []

    async def echo(stream) -> None:
        async with stream:
            try:
                while True:
                    data = await stream.read_some()
                    if not data:
                        break
                    await stream.write_all(data)
                await stream.send_eof()
            except OSError as error:  # a reset peer ends only its own fiber
                if error.errno not in (104, 32, 107):  # ECONNRESET, EPIPE, ENOTCONN
                    errors.append(repr(error))

    async def main():
        # SIGTERM reaches the fibers through a self-pipe: a Python handler only
        # runs between bytecodes, and would not end the loop's wait by itself.
        wake, poke = socket.socketpair()
        wake.setblocking(False)
        poke.setblocking(False)
        signal.signal(signal.SIGTERM, lambda *_: poke.send(b"!"))
        async with await poorio.listen_tcp("127.0.0.1", 0, backlog=4096) as listener:
            print(f"READY {listener.local_address[1]}", flush=True)
            async with poorio.Group() as g:

                async def accept_loop():
                    while True:
                        g.spawn(echo, await listener.accept())

                g.spawn(accept_loop)
                await poorio.wait_readable(wake)
                stats = poorio.stats()
                g.cancel_scope.cancel()
        wake.close()
        poke.close()
        return {"server": "poorio", "backend": stats.backend, "fibers_at_stop": stats.fibers, "errors": errors}

    _report(poorio.run(main, **({"capacity": capacity} if capacity else {})))


def serve_selectors() -> None:
    import selectors

    sel = selectors.DefaultSelector()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ, None)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    print(f"READY {listener.getsockname()[1]}", flush=True)
    pending = {}  # conn -> bytes not yet echoed (at most one read's worth: then we stop reading)

    def close(conn):
        sel.unregister(conn)
        pending.pop(conn, None)
        conn.close()

    while not stopping:
        for key, events in sel.select(1.0):
            sock = key.fileobj
            if sock is listener:
                for _ in range(16):
                    try:
                        conn, _ = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ, None)
                continue
            try:
                if events & selectors.EVENT_WRITE:
                    data = pending[sock]
                    sent = sock.send(data)
                    data = data[sent:]
                    if data:
                        pending[sock] = data
                    else:
                        del pending[sock]
                        sel.modify(sock, selectors.EVENT_READ)
                elif events & selectors.EVENT_READ:
                    data = sock.recv(65536)
                    if not data:
                        sock.shutdown(socket.SHUT_WR)
                        close(sock)
                        continue
                    try:
                        sent = sock.send(data)
                    except BlockingIOError:
                        sent = 0
                    if sent < len(data):
                        pending[sock] = data[sent:]
                        sel.modify(sock, selectors.EVENT_WRITE)
            except OSError:
                close(sock)
    _report({"server": "selectors", "backend": type(sel).__name__, "errors": []})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--selectors", action="store_true", help="the stdlib-selectors peer instead of poorio")
    parser.add_argument("--capacity", type=int, default=None)
    args = parser.parse_args()
    signal.signal(signal.SIGUSR1, _on_usr1)
    if args.selectors:
        serve_selectors()
    else:
        serve_poorio(args.capacity)
    sys.exit(0)
