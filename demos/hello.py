"""Hello World with two fibers: a spawned fiber prints " World" after main prints "Hello".

The first concurrent program of the Emilua tutorial, in Python.  ``spawn``
schedules a new fiber for near execution and main goes on to print "Hello".
``run`` ends when main ends (it cancels any fiber still running then), so
main joins the fiber it spawned.  The sleep only shows that the two fibers
interleave: never use timers to order fibers.
Run it: ``python demos/hello.py``.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from poorio import run, spawn, sleep  # noqa: E402


async def world() -> None:
    await sleep(0.1)
    sys.stdout.write(" World\n")


async def main() -> None:
    fiber = spawn(world)
    sys.stdout.write("Hello")
    sys.stdout.flush()
    await fiber.join()


if __name__ == "__main__":
    run(main)
