"""The Go-tour fibonacci over channels, with a choice between putting on one channel and getting from another.

The generator offers the next number on ``c`` *or* takes a quit signal
from ``quit``, whichever a partner is ready for -- Go's ``select``, written
as an operation built from two operations (the example on lua-fibers' front
page).  Run it: ``python demos/fibonacci.py``.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from poorio.channel import Channel  # noqa: E402
from poorio.ops import choice  # noqa: E402
from poorio import run, spawn  # noqa: E402


async def fibonacci(c: Channel, quit: Channel) -> None:
    x, y = 0, 1
    done = False

    def advance(_):
        nonlocal x, y
        x, y = y, x + y

    def stop(_):
        nonlocal done
        print("quit")
        done = True

    while not done:
        await choice(c.put_op(x).wrap(advance), quit.get_op().wrap(stop)).perform()


async def main() -> None:
    c, quit = Channel(), Channel()

    async def consumer():
        for _ in range(10):
            print(await c.get())
        await quit.put(0)

    spawn(consumer)
    await fibonacci(c, quit)


if __name__ == "__main__":
    run(main)
