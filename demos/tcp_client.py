"""A line-at-a-time TCP client: send each argument as a line, print each reply line.

    python3 demos/echo_server.py 7000 &
    python3 demos/tcp_client.py 127.0.0.1 7000 hello world

It connects (with a 5 s timeout from a cancel scope), writes every line,
half-closes with ``send_eof()`` so the server knows nothing more comes, and
prints what comes back, line by line with ``read_line``, until end of stream.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from poorio import net  # noqa: E402 (after the path tweak, so it runs from a checkout)
from poorio import fail_after, run  # noqa: E402


async def main(host: str, port: int, lines: list) -> int:
    with fail_after(5):
        stream = await net.connect_tcp(host, port)
    async with stream:
        for line in lines:
            await stream.write_all(line.encode() + b"\n")
        await stream.send_eof()
        while True:
            reply = await stream.read_line(max_size=4096)
            if not reply:
                break
            print(reply.decode(errors="replace"), end="", flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("lines", nargs="*", default=["hello from poorio"])
    args = parser.parse_args()
    try:
        sys.exit(run(main, args.host, args.port, args.lines))
    except (ConnectionRefusedError, TimeoutError) as error:
        sys.exit(f"tcp_client: cannot connect to {args.host}:{args.port}: {error}")
