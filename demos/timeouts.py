"""A timeout is just another operation: choose between a message and the clock.

A slow worker answers on a channel.  The client waits for the answer *or* a
timeout, whichever comes first -- no special timeout API, just a ``choice``
with ``timeout_op``.  One ``timeout_op`` made before a loop bounds the whole
loop, because its deadline is fixed when it is made.  Run it:
``python demos/timeouts.py``.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from poorio.channel import Channel  # noqa: E402
from poorio.ops import choice, timeout_op  # noqa: E402
from poorio import run, spawn, sleep  # noqa: E402


async def worker(delay: float, answers: Channel) -> None:
    await sleep(delay)
    await answers.put(f"answer after {delay}s")


async def ask(delay: float, patience: float) -> str:
    answers = Channel()
    spawn(worker, delay, answers)
    return await choice(
        answers.get_op(),
        timeout_op(patience).wrap(lambda _: f"gave up after {patience}s"),
    ).perform()


async def main() -> None:
    print(await ask(0.01, 0.5))  # the answer wins
    print(await ask(0.5, 0.01))  # the timeout wins (the worker is cancelled when main ends)

    # One deadline for a whole loop: collect ticks until it passes.
    ticks = Channel()

    async def ticker():
        n = 0
        while True:
            await sleep(0.01)
            await ticks.put(n)
            n += 1

    spawn(ticker)
    deadline = timeout_op(0.2)
    got = []
    while True:
        tick = await choice(ticks.get_op(), deadline.wrap(lambda _: None)).perform()
        if tick is None:
            break
        got.append(tick)
    in_order = len(got) >= 3 and got == list(range(len(got)))
    print("ticks before the deadline:", "several, in order" if in_order else got)


if __name__ == "__main__":
    run(main)
