"""Files from fibers: many reads of one file at once, and a pipe read given up on -- without threads on io_uring and IOCP.

On the ``uring`` backend each ``pread`` below is an io_uring operation the
fiber parks on, and the read of an unbuffered pipe waits in the kernel, so
a timeout can cancel it: the kernel is asked to stop, and the fiber goes on
only once the kernel has let go of the buffer -- nothing written later is
lost.  On Windows the same holds through the scheduler's completion port
(the pipe there is one of ``poorio.streams.pipe()``: Windows cannot reopen
an ``os.pipe()`` overlapped).  Elsewhere the same code runs each call in
poorio's worker threads (and skips the pipe, whose read a thread could not
give up).  Run it as::

    python3 demos/file_fibers.py [PATH]      # checksum PATH (default: this file) with 8 fibers
    python3 demos/file_fibers.py --selftest  # on a temporary file, checked against a plain read
    POORIO_BACKEND=epoll python3 demos/file_fibers.py   # the worker-thread path, for comparison
"""

from __future__ import annotations

import os
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import poorio  # noqa: E402
from poorio.files import open_file, wrap_file  # noqa: E402
from poorio.platform import backends  # noqa: E402
from poorio.streams import pipe as stream_pipe  # noqa: E402

FIBERS = 8
BLOCK = 64 * 1024


async def checksum(path: str) -> int:
    """CRC-32 of the file at ``path``, its blocks read by ``FIBERS`` fibers at once, each with its own file."""
    size = os.path.getsize(path)
    blocks = {}  # block number -> its bytes

    async def reader(first: int) -> None:
        async with await open_file(path, "rb") as f:
            for number in range(first, (size + BLOCK - 1) // BLOCK, FIBERS):
                blocks[number] = await f.pread(BLOCK, number * BLOCK)

    async with poorio.Group() as group:
        for first in range(FIBERS):
            group.spawn(reader, first)
    crc = 0
    for number in range(len(blocks)):
        crc = zlib.crc32(blocks[number], crc)
    return crc


async def give_up_on_a_pipe() -> str:
    """Read an empty pipe with a timeout, then read what arrives after: the cancelled read took none of it."""
    if sys.platform == "win32":  # an overlapped pipe, read through the completion port
        reader, writer = stream_pipe()
        try:
            with poorio.move_on_after(0.2) as scope:
                await reader.read_some(100)
            await writer.write_all(b"written after the timeout")
            late = await reader.read_some(100)
        finally:
            reader.close()
            writer.close()
    else:
        r, w = os.pipe()
        pipe = wrap_file(os.fdopen(r, "rb", buffering=0))
        try:
            with poorio.move_on_after(0.2) as scope:
                await pipe.read(100)
            os.write(w, b"written after the timeout")
            late = await pipe.read(100)
        finally:
            await pipe.aclose()
            os.close(w)
    return f"a pipe read gave up after 0.2 s ({scope.cancelled_caught}); the next read got {late!r}"


async def main(path: str) -> int:
    kernel = poorio.current_scheduler().completes_io
    path_kind = "worker threads"
    if kernel:
        path_kind = "IOCP operations" if sys.platform == "win32" else "io_uring operations"
    crc = await checksum(path)
    print(f"crc32 of {path} ({os.path.getsize(path)} bytes, {FIBERS} fibers, {path_kind}): {crc:08x}")
    if kernel:
        print(await give_up_on_a_pipe())
    else:
        print("(no proactor on this backend: the pipe part needs io_uring or IOCP)")
    return crc


def run(path: str) -> int:
    """On io_uring where it works, unless ``POORIO_BACKEND`` names a backend."""
    backend = None if os.environ.get("POORIO_BACKEND") or "uring" not in backends() else "uring"
    return poorio.run(main, path, backend=backend)


if __name__ == "__main__":
    if sys.argv[1:] == ["--selftest"]:
        with tempfile.TemporaryDirectory() as folder:
            sample = os.path.join(folder, "sample")
            with open(sample, "wb") as out:
                out.write(os.urandom(20 * BLOCK + 321))
            with open(sample, "rb") as f:
                expected = zlib.crc32(f.read())
            same = run(sample) == expected
            print("matches a plain read" if same else "DIFFERS from a plain read")
            sys.exit(0 if same else 1)
    run(sys.argv[1] if len(sys.argv) > 1 else os.path.abspath(__file__))
