"""poorio.Completion: callbacks from the scheduler's thread, from other threads, late, twice, cancelled, chosen."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import poorio
from fiber_helpers import backend, run  # noqa: F401 (fixtures)
from poorio.ops import choice, timeout_op


def later(seconds, fn, *args):
    """Call ``fn(*args)`` from a new thread after ``seconds``; returns the started thread."""
    thread = threading.Thread(target=lambda: (time.sleep(seconds), fn(*args)))
    thread.start()
    return thread


def test_callback_from_the_schedulers_own_thread(backend):
    async def main():
        done = poorio.Completion()

        async def api():
            await poorio.sleep(0.01)
            done.callback("from a fiber")

        poorio.spawn(api)
        return await done, done.done()

    assert run(main, backend=backend) == ("from a fiber", True)


def test_callback_before_the_await_returns_at_once():
    async def main():
        done = poorio.Completion()
        done.callback(1, 2)  # several arguments: a tuple
        none = poorio.Completion()
        none.callback()
        return await done, await done, await none

    assert run(main) == ((1, 2), (1, 2), None)


def test_callback_from_another_thread_wakes_a_blocked_loop(backend):
    async def main():
        done = poorio.Completion()
        thread = later(0.05, done.callback, "from a thread")
        start = time.monotonic()
        with poorio.fail_after(10):
            value = await done
        elapsed = time.monotonic() - start
        thread.join()
        return value, elapsed

    value, elapsed = run(main, backend=backend)
    assert value == "from a thread"
    assert elapsed < 5  # woken by the wake-up fd, not by the safety net


def test_errback_from_another_thread_raises_in_the_fiber():
    async def main():
        done = poorio.Completion()
        thread = later(0.01, done.errback, KeyError("nope"))
        try:
            with pytest.raises(KeyError, match="nope"):
                await done
        finally:
            thread.join()
        bad = poorio.Completion()
        bad.errback("not an exception")
        with pytest.raises(TypeError, match="takes an exception"):
            await bad
        cls = poorio.Completion()
        cls.errback(ValueError)
        with pytest.raises(ValueError):
            await cls
        return True

    assert run(main)


def test_concurrent_futures_done_callback():
    async def main():
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(lambda: sum(range(1000)))
            done = poorio.Completion()
            future.add_done_callback(done.callback)
            finished = await done
            return finished.result()

    assert run(main) == 499500


def test_a_second_call_is_dropped_with_a_warning(caplog):
    async def main():
        done = poorio.Completion()
        done.callback("first")
        done.errback(RuntimeError("second"))  # never raises here
        thread = later(0, done.callback, "third")
        thread.join()
        return await done

    with caplog.at_level(logging.WARNING, logger="poorio"):
        assert run(main) == "first"
    dropped = [r.getMessage() for r in caplog.records if "already resolved" in r.getMessage()]
    assert len(dropped) == 2, caplog.text
    assert "second" in dropped[0] and "third" in dropped[1]


def test_a_late_callback_is_dropped_with_a_warning_in_any_thread(caplog):
    async def main():
        return poorio.Completion(), poorio.Completion()

    here, there = run(main)
    errors = []

    def call_late():
        try:
            there.callback("too late")
        except BaseException as error:  # the point: nothing may raise in this thread
            errors.append(error)

    with caplog.at_level(logging.WARNING, logger="poorio"):
        here.callback("late, same thread")
        thread = threading.Thread(target=call_late)
        thread.start()
        thread.join()
    assert errors == []
    late = [r.getMessage() for r in caplog.records if "scheduler has finished" in r.getMessage()]
    assert len(late) == 2, caplog.text
    assert here.done() and there.done()  # recorded, just never delivered


def test_cancelling_the_waiter_leaves_the_completion_pending():
    async def main():
        done = poorio.Completion()
        with poorio.move_on_after(0.02) as scope:
            await done
        assert scope.cancelled_caught and not done.done()
        waiter = poorio.spawn(_await, done)
        await poorio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(poorio.Cancelled):
            await waiter.join()
        thread = later(0.01, done.callback, "kept")
        value = await done  # a later call is kept for the next waiter
        thread.join()
        return value, poorio.stats().events

    assert run(main) == ("kept", 0)  # nothing left registered


async def _await(awaitable):
    return await awaitable


def test_many_fibers_await_one_completion():
    async def main():
        done = poorio.Completion()
        async with poorio.Group() as group:
            fibers = [group.spawn(_await, done) for _ in range(5)]
            await poorio.sleep(0.01)
            thread = later(0, done.callback, 42)
        thread.join()
        return [f.result() for f in fibers]

    assert run(main) == [42] * 5


def test_op_in_a_choice_with_a_timeout():
    async def main():
        slow = poorio.Completion()
        first = await choice(
            slow.op().wrap(lambda v: ("callback", v)), timeout_op(0.02).wrap(lambda _: ("timeout", None))
        ).perform()
        fast = poorio.Completion()
        thread = later(0.01, fast.callback, "quick")
        second = await choice(
            fast.op().wrap(lambda v: ("callback", v)), timeout_op(10).wrap(lambda _: ("timeout", None))
        ).perform()
        thread.join()
        failing = poorio.Completion()
        thread = later(0.01, failing.errback, OSError(5, "io"))
        with pytest.raises(OSError):
            await choice(failing.op(), timeout_op(10)).perform()
        thread.join()
        return first, second

    assert run(main) == (("timeout", None), ("callback", "quick"))


def test_a_completion_nobody_awaits_does_not_hide_a_deadlock():
    async def main():
        done = poorio.Completion()  # noqa: F841 - handed out, never awaited
        with poorio.move_on_after(0.01):
            await done  # awaited once, then abandoned: its registration goes too
        await poorio.Channel().get()  # nothing can ever put

    with pytest.raises(poorio.DeadlockError):
        run(main)


def test_awaiting_from_another_schedulers_thread_is_an_error():
    async def other(done):
        with pytest.raises(RuntimeError, match="belongs to the scheduler"):
            await done
        return True

    async def outer():
        done = poorio.Completion()
        result = []
        thread = threading.Thread(target=lambda: result.append(poorio.run(other, done)))
        thread.start()
        while thread.is_alive():
            await poorio.sleep(0.01)
        thread.join()
        return result

    assert run(outer) == [True]


def test_made_outside_a_scheduler_is_an_error():
    with pytest.raises(RuntimeError, match="no poorio scheduler"):
        poorio.Completion()
