"""A chat server: every line a client sends goes to every other client.

    python3 demos/chat_server.py             # port 0: the kernel picks one, printed at start
    python3 demos/chat_server.py 7000        # then: nc 127.0.0.1 7000 (from several terminals)
    python3 demos/chat_server.py --selftest  # serve, run three clients against itself, exit

Each client has two fibers: a reader that turns its lines into broadcasts,
and a writer that drains the client's own bounded ``Queue`` onto its
socket.  A broadcast never waits for a slow client: if a client's queue is
full, that client is dropped (bounded memory, no head-of-line blocking).
A client that leaves -- end of stream, a reset, a line longer than
``MAX_LINE`` -- is removed and the others are told.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from poorio import net  # noqa: E402 (after the path tweak, so it runs from a checkout)
from poorio import fail_after, Group, run  # noqa: E402
from poorio.channel import Queue  # noqa: E402
from poorio.errors import ClosedResourceError, LimitOverrunError  # noqa: E402

MAX_LINE = 1024  # longest line a client may send
BACKLOG = 64  # lines queued for one client before it counts as too slow


class Room:
    """The clients present, each with its outgoing queue."""

    def __init__(self) -> None:
        self.outboxes = {}  # name -> Queue of lines to send to that client

    def broadcast(self, line: bytes, sender: str | None = None) -> None:
        for name, outbox in list(self.outboxes.items()):
            if name == sender:
                continue
            if len(outbox) >= BACKLOG:
                self.leave(name)  # too slow: drop it rather than buffer without bound
            else:
                outbox.put_op(line).attempt()  # room in the buffer: completes at once

    def leave(self, name: str) -> None:
        outbox = self.outboxes.pop(name, None)
        if outbox is not None:
            outbox.close()  # its writer drains what is queued, then closes the socket
            self.broadcast(f"* {name} left\n".encode())


async def writer(stream: net.SocketStream, outbox: Queue) -> None:
    try:
        async for line in outbox:
            await stream.write_all(line)
    except OSError:
        pass  # the reader sees the same failure and leaves
    finally:
        stream.close()  # wakes the reader too


async def client(room: Room, stream: net.SocketStream, name: str) -> None:
    outbox = Queue(BACKLOG)
    room.outboxes[name] = outbox
    room.broadcast(f"* {name} joined\n".encode(), name)
    async with Group() as g:
        g.spawn(writer, stream, outbox)
        outbox.put_op(f"welcome, {name}\n".encode()).attempt()
        try:
            while True:
                line = await stream.read_line(MAX_LINE)
                if not line:
                    break
                room.broadcast(f"{name}: ".encode() + line.rstrip(b"\n") + b"\n", name)
        except (OSError, LimitOverrunError, ClosedResourceError):
            pass  # a reset, an overlong line, or our writer closed the socket: leave
        finally:
            room.leave(name)


async def serve(listener: net.Listener, group: Group, room: Room) -> None:
    count = 0
    while True:
        stream = await listener.accept()
        count += 1
        group.spawn(client, room, stream, f"guest{count}")


async def expect(stream: net.SocketStream, text: bytes) -> bytes:
    """Read lines (skipping others, such as join notices) until one contains ``text``."""
    while True:
        line = await stream.read_line()
        if not line:
            raise EOFError(f"the server hung up before sending {text!r}")
        if text in line:
            return line


async def selftest(port: int) -> None:
    """Three clients: each hears the others' lines, and who left."""
    a = await net.connect_tcp("127.0.0.1", port)
    b = await net.connect_tcp("127.0.0.1", port)
    c = await net.connect_tcp("127.0.0.1", port)
    async with a, b, c:
        for s in (a, b, c):
            await expect(s, b"welcome")
        await a.write_all(b"hello from a\n")
        heard = [await expect(s, b"hello from a") for s in (b, c)]
        await c.write_all(b"hello from c\n")
        heard += [await expect(s, b"hello from c") for s in (a, b)]
        await b.send_eof()  # b leaves: the others are told
        heard += [await expect(s, b"left") for s in (a, c)]
    print("".join(line.decode() for line in heard), end="")


async def main(port: int, test: bool) -> int:
    room = Room()
    async with await net.listen_tcp("127.0.0.1", port) as listener:
        print(f"chat server listening on 127.0.0.1:{listener.local_address[1]}", flush=True)
        async with Group() as server:
            server.spawn(serve, listener, server, room)
            if test:
                with fail_after(20):
                    await selftest(listener.local_address[1])
                print("selftest: ok")
                server.cancel_scope.cancel()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--selftest", action="store_true", help="run clients against the server, then exit")
    args = parser.parse_args()
    try:
        sys.exit(run(main, args.port, args.selftest))
    except KeyboardInterrupt:
        pass
