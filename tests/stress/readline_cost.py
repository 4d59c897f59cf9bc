"""CPU seconds to read one long line arriving in small pieces: poorio's read_line against asyncio's readline.

    python -m tests.stress.readline_cost [--mib 32] [--impl poorio|asyncio]

A child process writes a ``--mib`` MiB line (then ``\\n``) in 1 KiB writes
into a socket whose receive buffer is shrunk to the minimum, so the reader
gets it in pieces of a few KiB; this process reads it as one line and
prints the CPU seconds the read took (this process only), best of
``--repeat``.  ``PYTHONPATH`` picks the poorio measured.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time

WRITER = """
import os, socket, sys
sock = socket.socket(fileno=int(sys.argv[1]))
piece = b"x" * 1024
for _ in range(int(sys.argv[2]) * 1024):
    sock.sendall(piece)
sock.sendall(b"\\n")
sock.close()
"""


def _pair(mib: int):
    reader, writer = socket.socketpair()
    # The kernel's minimum buffers (a Unix socket's queue is bounded by the
    # sender's SO_SNDBUF): the line arrives a few KiB at a time.
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1024)
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(writer.fileno()), str(mib)], pass_fds=[writer.fileno()])
    writer.close()
    return reader, child


def poorio_read(mib: int) -> float:
    import poorio
    from poorio.net import SocketStream

    reader, child = _pair(mib)

    async def main():
        async with SocketStream(reader) as stream:
            start = time.process_time()
            line = await stream.read_line(max_size=(mib << 20) + 1)
            spent = time.process_time() - start
        assert len(line) == (mib << 20) + 1
        return spent

    try:
        return poorio.run(main)
    finally:
        child.wait()


def asyncio_read(mib: int) -> float:
    reader_sock, child = _pair(mib)

    async def main():
        reader, writer = await asyncio.open_connection(sock=reader_sock, limit=(mib << 20) + 2)
        start = time.process_time()
        line = await reader.readline()
        spent = time.process_time() - start
        writer.close()
        assert len(line) == (mib << 20) + 1
        return spent

    try:
        return asyncio.run(main())
    finally:
        child.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("--impl", choices=("poorio", "asyncio"), default="poorio")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    read = poorio_read if args.impl == "poorio" else asyncio_read
    best = min(read(args.mib) for _ in range(args.repeat))
    print(f"{args.impl}: {args.mib} MiB line in small pieces: {best:.2f} s CPU (best of {args.repeat})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
