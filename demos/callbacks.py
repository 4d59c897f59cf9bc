"""Callbacks to coroutines: callback-style APIs wrapped into synchronous-looking async functions with ``Completion``.

The "Callbacks to Coroutines" pattern of the Lua log (luv's
``make_callback()``): hand the API a callback that resumes the waiting
coroutine, then wait.  Here ``poorio.Completion`` is that callback, and
two callback-style APIs get wrapped:

1. ``concurrent.futures``: a thread pool's future calls
   ``add_done_callback`` from the pool's thread when it is done.
2. ``LuvLike``, a tiny luv-style loop of its own: it runs in its own thread
   and calls back node-style, ``callback(err, value)``, from there.

While a fiber waits in one of the wrapped calls, the other fibers run (a
ticker shows it).  ``choice(done.op(), timeout_op(...))`` bounds a wait
on an API that might never call back.

Run it: ``python demos/callbacks.py``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import poorio  # noqa: E402 (after the path tweak, so it runs from a checkout)
from poorio.ops import choice, timeout_op  # noqa: E402


# -- 1. concurrent.futures ------------------------------------------------------------------


async def in_pool(pool: ThreadPoolExecutor, fn, *args):
    """``fn(*args)`` in ``pool``, awaited: the future's done-callback resumes this fiber."""
    done = poorio.Completion()
    pool.submit(fn, *args).add_done_callback(done.callback)
    future = await done
    return future.result()


# -- 2. a luv-like API that calls back from its own thread --------------------------------------


class LuvLike:
    """A toy callback loop in a thread of its own: ``timer`` and ``read_file`` call back ``(err, value)``."""

    def __init__(self) -> None:
        self._jobs = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="luv-like loop")
        self._stopped = False
        self._thread.start()

    def timer(self, seconds: float, callback) -> None:
        self._post(time.monotonic() + seconds, lambda: callback(None, seconds))

    def read_file(self, path: str, callback) -> None:
        def read() -> None:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as error:
                callback(error, None)
            else:
                callback(None, data)

        self._post(time.monotonic(), read)

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join()

    def _post(self, when: float, job) -> None:
        with self._cond:
            self._jobs.append((when, job))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    now = time.monotonic()
                    due = [job for job in self._jobs if job[0] <= now]
                    if due:
                        break
                    waits = [when - now for when, _ in self._jobs]
                    self._cond.wait(min(waits) if waits else None)
                if self._stopped:
                    return
                for job in due:
                    self._jobs.remove(job)
            for _, job in due:
                job()


def node_style(done: poorio.Completion):
    """A ``callback(err, value)`` resolving ``done``, as ``make_callback()`` makes in the Lua log."""

    def callback(err, value) -> None:
        if err is not None:
            done.errback(err)
        else:
            done.callback(value)

    return callback


async def luv_sleep(loop: LuvLike, seconds: float) -> float:
    done = poorio.Completion()
    loop.timer(seconds, node_style(done))
    return await done


async def luv_read(loop: LuvLike, path: str) -> bytes:
    done = poorio.Completion()
    loop.read_file(path, node_style(done))
    return await done


# -- the program --------------------------------------------------------------------------------


async def ticker(ticks: list) -> None:
    while True:
        await poorio.sleep(0.01)
        ticks.append(1)


async def main() -> None:
    ticks = []
    clock = poorio.spawn(ticker, ticks)

    with ThreadPoolExecutor(2) as pool:
        digest = await in_pool(pool, lambda: hashlib.sha256(b"poorio" * 100_000).hexdigest()[:16])
        print(f"concurrent.futures: sha256 prefix {digest}")

    loop = LuvLike()
    try:
        slept = await luv_sleep(loop, 0.1)
        print(f"luv-like timer: slept {slept} s while the ticker ticked {'on' if ticks else 'NOT'}")
        data = await luv_read(loop, __file__)
        print(f"luv-like read_file: {len(data.splitlines())} lines of this demo")
        try:
            await luv_read(loop, "/no/such/file")
        except FileNotFoundError as error:
            print(f"luv-like read_file of a missing file: {type(error).__name__} (errno {error.errno})")
        never_called = poorio.Completion()  # an API that never calls back, bounded by a timeout
        outcome = await choice(
            never_called.op().wrap(lambda v: f"called back with {v!r}"),
            timeout_op(0.05).wrap(lambda _: "timed out after 0.05 s"),
        ).perform()
        print(f"a callback that never comes: {outcome}")
    finally:
        loop.close()
    clock.cancel()


if __name__ == "__main__":
    poorio.run(main)
