"""Copy a file through a proactor: io_uring on Linux, an I/O completion port on Windows.

A readiness loop cannot wait for a file (a file is always "ready"); a
proactor can.  This keeps DEPTH reads in flight, and as each read
completes, submits the write of its block at the same offset -- one token
per block, one buffer per block, every buffer kept until its operation's
completion arrived.  Run it as::

    python3 demos/proactor_copy.py SOURCE DESTINATION
    python3 demos/proactor_copy.py --selftest      # copies a temporary file and checks it
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from poorio.platform import iocp, uring  # noqa: E402

BLOCK = 64 * 1024
DEPTH = 16


def open_pair(source: str, destination: str):
    """(proactor, source handle, destination handle, close) for this system."""
    if uring.available():
        ring = uring.Ring(2 * DEPTH)
        src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        dst = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        return ring, src, dst, os.close
    if iocp.available():
        port = iocp.Port(2 * DEPTH)
        return port, iocp.open_file(source), iocp.open_file(destination, write=True), iocp.close_handle
    raise SystemExit(f"no proactor here: io_uring says {uring.unavailable_reason()!r}, and this is not Windows")


def copy(source: str, destination: str) -> int:
    """Copy ``source`` to ``destination``; the number of bytes copied."""
    size = os.path.getsize(source)
    proactor, src, dst, close = open_pair(source, destination)
    try:
        buffers = {}  # offset -> the block's buffer, alive until its write completed
        next_offset = 0
        copied = 0

        def read_more():
            nonlocal next_offset
            while next_offset < size and len(buffers) < DEPTH:
                buffers[next_offset] = bytearray(min(BLOCK, size - next_offset))
                proactor.submit_read(src, buffers[next_offset], next_offset, ("read", next_offset))
                next_offset += BLOCK

        read_more()
        while buffers:
            for (kind, offset), result, _flags in proactor.wait(None):
                if isinstance(result, OSError):
                    raise result
                if kind == "read":
                    data = memoryview(buffers[offset])[:result]
                    proactor.submit_write(dst, data, offset, ("write", offset))
                else:
                    copied += result
                    del buffers[offset]  # its write is done: the buffer is free
                    read_more()
        return copied
    finally:
        proactor.close()
        for handle in (src, dst):
            proactor.forget(handle)
            close(handle)


def main(argv: list) -> int:
    if argv[1:] == ["--selftest"]:
        with tempfile.TemporaryDirectory() as folder:
            source, destination = os.path.join(folder, "a"), os.path.join(folder, "b")
            with open(source, "wb") as out:
                out.write(os.urandom(5 * BLOCK + 123))
            copied = copy(source, destination)
            with open(source, "rb") as a, open(destination, "rb") as b:
                same = a.read() == b.read()
            through = "io_uring" if uring.available() else "an I/O completion port"
            print(f"copied {copied} bytes through {through}: {'identical' if same else 'DIFFERENT'}")
            return 0 if same else 1
    if len(argv) != 3:
        print(__doc__)
        return 2
    started = time.perf_counter()
    copied = copy(argv[1], argv[2])
    elapsed = time.perf_counter() - started
    print(f"copied {copied} bytes in {elapsed:.3f} s ({copied / max(elapsed, 1e-9) / 1e6:.1f} MB/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
