"""Connection handlers for the serve_tcp tests, importable by name in every worker process."""

from __future__ import annotations

import os


async def whoami(stream):
    """Tell the client which process serves it; a client that answers ``crash`` kills that worker."""
    await stream.write_all(f"{os.getpid()}\n".encode())
    line = await stream.read_line(max_size=64)
    if line == b"crash\n":
        os._exit(3)  # a crash no exception handler can catch
    await stream.write_all(b"bye\n")


async def echo_line(stream):
    await stream.write_all(await stream.read_line(max_size=1024))


def greeter(word):
    """A handler factory: each worker calls it once with ``serve_tcp``'s ``factory_args``."""

    async def greet(stream):
        await stream.write_all(f"{word} from {os.getpid()}\n".encode())

    return greet
