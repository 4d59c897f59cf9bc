"""Pipe data through a child process: one fiber feeds its stdin while another reads its stdout.

Run: python demos/subprocess_pipe.py

The child is ``tr a-z A-Z`` when it exists, else a Python one-liner doing
the same.  Feeding and reading run concurrently, so a payload far larger
than a pipe's buffer flows through without either side blocking the other
(writing everything first and reading after would deadlock once both pipes
are full).  The demo prints the first line back and checks the rest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import poorio  # noqa: E402
from poorio import Group  # noqa: E402
from poorio.process import PIPE, open_process  # noqa: E402

GREETING = b"hello from a fiber\n"
FILLER = b"the quick brown fox jumps over the lazy dog\n" * 50_000  # ~2 MB


def upper_command() -> list:
    tr = shutil.which("tr")
    if tr:
        return [tr, "a-z", "A-Z"]
    return [sys.executable, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read().upper())"]


async def feed(stream, data: bytes) -> None:
    await stream.write_all(data)
    stream.close()  # end of input: the child finishes


async def collect(stream, into: bytearray) -> None:
    while True:
        chunk = await stream.read_some()
        if not chunk:
            return
        into += chunk


async def main() -> None:
    data = GREETING + FILLER
    out = bytearray()
    async with await open_process(upper_command(), stdin=PIPE, stdout=PIPE) as child:
        async with Group() as group:
            group.spawn(feed, child.stdin, data)
            group.spawn(collect, child.stdout, out)
        code = await child.wait()
    print(out[: len(GREETING)].decode().strip())
    print(f"child exited with {code}; {len(out)} bytes back")
    match = hashlib.sha256(bytes(out)).digest() == hashlib.sha256(data.upper()).digest()
    print(f"sha256 match: {match}")


if __name__ == "__main__":
    poorio.run(main)
