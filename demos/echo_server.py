"""A TCP echo server with one fiber per client.

    python3 demos/echo_server.py            # port 0: the kernel picks one, printed at start
    python3 demos/echo_server.py 7000       # a fixed port
    python3 demos/echo_server.py --selftest # serve, run clients against itself, exit

Each client gets its own fiber in a ``Group``; a client's fiber reads with
``read_some`` and answers with ``write_all`` until the client half-closes,
then half-closes back.  Nothing is buffered beyond one read.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from poorio import net  # noqa: E402 (after the path tweak, so it runs from a checkout)
from poorio import fail_after, Group, run  # noqa: E402


async def echo(stream: net.SocketStream) -> None:
    """Echo one client until it half-closes (or vanishes)."""
    async with stream:
        try:
            while True:
                data = await stream.read_some()
                if not data:
                    break
                await stream.write_all(data)
            await stream.send_eof()
        except OSError as error:  # a reset peer ends only its own fiber
            print(f"client {error.errno}: {error.strerror}", file=sys.stderr)


async def serve(listener: net.Listener, group: Group) -> None:
    while True:
        group.spawn(echo, await listener.accept())


async def client(port: int, payload: bytes) -> str:
    """Send ``payload``, half-close, read the echo to the end; return its digest."""
    async with await net.connect_tcp("127.0.0.1", port) as stream:
        async with Group() as g:

            async def send() -> None:
                await stream.write_all(payload)
                await stream.send_eof()

            g.spawn(send)
            digest = hashlib.sha256()
            while True:
                data = await stream.read_some()
                if not data:
                    break
                digest.update(data)
    return digest.hexdigest()


async def main(port: int, selftest: bool) -> int:
    async with await net.listen_tcp("127.0.0.1", port) as listener:
        print(f"echo server listening on 127.0.0.1:{listener.local_address[1]}", flush=True)
        async with Group() as server:
            server.spawn(serve, listener, server)
            if not selftest:
                return 0  # not reached: serve() runs until interrupted
            payloads = [os.urandom(1024) * n for n in (1, 64, 1024)]  # up to 1 MiB
            with fail_after(30):
                async with Group() as clients:
                    fibers = [clients.spawn(client, listener.local_address[1], p) for p in payloads]
            ok = all(f.result() == hashlib.sha256(p).hexdigest() for f, p in zip(fibers, payloads))
            print(f"selftest: {len(payloads)} concurrent clients, echoes {'intact' if ok else 'CORRUPTED'}")
            server.cancel_scope.cancel()
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--selftest", action="store_true", help="run clients against the server, then exit")
    args = parser.parse_args()
    try:
        sys.exit(run(main, args.port, args.selftest))
    except KeyboardInterrupt:
        pass
