"""Sleepsort: each number sleeps for itself, then prints itself, so the numbers come out sorted.

From the Emilua tutorial: one fiber per number, all sleeping concurrently,
and a ``Group`` so the program ends only when every fiber has printed.
Each sleeps until one shared start time plus its number, not for its
number from whenever it got to run: a busy machine that starts the fibers
a few milliseconds apart cannot reorder numbers that are close.
Run it: ``python demos/sleepsort.py [numbers...]`` (default 8 42 38 111 2 39 1).
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from poorio import Group, run, sleep_until  # noqa: E402

NUMBERS = [8, 42, 38, 111, 2, 39, 1]


async def sleep_then_print(start: float, n: int) -> None:
    await sleep_until(start + n / 100)
    print(n, flush=True)


async def main(numbers: list) -> None:
    start = time.monotonic()
    async with Group() as g:
        for n in numbers:
            g.spawn(sleep_then_print, start, n)


if __name__ == "__main__":
    run(main, [int(arg) for arg in sys.argv[1:]] or NUMBERS)
