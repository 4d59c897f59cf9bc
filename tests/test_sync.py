"""Cond, Event, Lock and Semaphore: exact interleavings, FIFO hand-over, operations in a choice, cancellation.

No IO is involved, so these run on the default backend; each run checks the
scheduler is left with nothing registered (``fiber_helpers.run``).
"""

from __future__ import annotations

import pytest

from fiber_helpers import run  # noqa: F401 (fixtures)
from poorio.channel import Channel
from poorio.errors import Cancelled
from poorio.ops import choice, timeout_op
from poorio import checkpoint, sleep, spawn
from poorio.sync import Cond, Event, Lock, Semaphore


async def _wait(log, cond, name):
    log.append(f"{name} waits")
    await cond.wait()
    log.append(f"{name} woke")


def test_cond_wakes_every_waiter_once_and_for_all():
    log = []

    async def main():
        cond = Cond()
        a = spawn(_wait, log, cond, "a")
        b = spawn(_wait, log, cond, "b")
        await checkpoint()
        log.append("signal")
        cond.signal()
        log.append("signalled")
        await a.join()
        await b.join()
        await cond.wait()  # signalled for good: no wait
        log.append(repr(cond))

    run(main)
    assert log == ["a waits", "b waits", "signal", "signalled", "a woke", "b woke", "<Cond signalled>"]


def test_event_set_clear_and_is_set():
    log = []

    async def main():
        ev = Event()
        assert not ev.is_set()
        w = spawn(_wait, log, ev, "w")
        await checkpoint()
        ev.set()
        assert ev.is_set()
        await w.join()
        ev.clear()
        w2 = spawn(_wait, log, ev, "w2")
        await checkpoint()
        log.append(f"cleared: w2 parked {not w2.done()}")
        ev.set()
        await w2.join()

    run(main)
    assert log == ["w waits", "w woke", "w2 waits", "cleared: w2 parked True", "w2 woke"]


def test_cond_wait_in_a_choice_with_a_timeout():
    async def main():
        cond = Cond()

        def signal_or_timeout(seconds):
            return choice(cond.wait_op().wrap(lambda _: "signal"), timeout_op(seconds).wrap(lambda _: "timeout"))

        first = await signal_or_timeout(0.01).perform()

        async def signaller():
            await sleep(0.005)
            cond.signal()

        spawn(signaller)
        second = await signal_or_timeout(5).perform()
        return first, second, len(cond._waiters)

    assert run(main) == ("timeout", "signal", 0)


async def _locked_section(log, lock, name):
    async with lock:
        log.append(f"{name} in")
        await checkpoint()
        log.append(f"{name} out")


def test_lock_is_mutual_exclusion_handed_over_in_arrival_order():
    log = []

    async def main():
        lock = Lock()
        fibers = [spawn(_locked_section, log, lock, name) for name in "abc"]
        for f in fibers:
            await f.join()
        log.append(lock.locked())

    run(main)
    assert log == ["a in", "a out", "b in", "b out", "c in", "c out", False]


def test_lock_release_when_not_held_raises():
    lock = Lock()
    with pytest.raises(RuntimeError, match="not held"):
        lock.release()


def test_cancelled_lock_waiter_is_skipped_and_leaves_no_entry():
    log = []

    async def main():
        lock = Lock()
        await lock.acquire()
        a = spawn(_locked_section, log, lock, "a")
        b = spawn(_locked_section, log, lock, "b")
        await checkpoint()
        a.cancel()
        await checkpoint()
        log.append(f"waiters {len(lock._waiters)}")
        lock.release()  # goes to b, not to the cancelled a
        with pytest.raises(Cancelled):
            await a.join()
        await b.join()
        log.append((lock.locked(), len(lock._waiters)))

    run(main)
    assert log == ["waiters 1", "b in", "b out", (False, 0)]


def test_lock_acquire_op_in_a_choice_with_a_channel():
    async def main():
        lock, ch = Lock(), Channel()
        await lock.acquire()

        async def sender():
            await ch.put("message")

        spawn(sender)
        got = await choice(lock.acquire_op().wrap(lambda _: "lock"), ch.get_op()).perform()
        # the choice took the message, so it must not also hold a permit
        still = lock.locked()
        lock.release()
        return got, still, lock.locked(), len(lock._waiters)

    assert run(main) == ("message", True, False, 0)


def test_semaphore_bounds_concurrency():
    log = []
    inside = [0]

    async def worker(sem, name):
        async with sem:
            inside[0] += 1
            log.append((name, inside[0]))
            await sleep(0.001)
            inside[0] -= 1

    async def main():
        sem = Semaphore(2)
        fibers = [spawn(worker, sem, i) for i in range(6)]
        for f in fibers:
            await f.join()
        return sem.value

    assert run(main) == 2
    assert max(n for _, n in log) == 2
    assert [name for name, _ in log] == list(range(6))  # permits go in arrival order


def test_semaphore_bounds_and_values():
    with pytest.raises(ValueError):
        Semaphore(-1)
    with pytest.raises(ValueError):
        Semaphore(3, max_value=2)
    sem = Semaphore(0, max_value=1)
    sem.release()
    assert sem.value == 1
    with pytest.raises(ValueError, match="released more"):
        sem.release()
