"""Concurrent ML operations: perform, wrap, choice (fairness, IO/channel/timeout), cancellation cleanup, demos.

Interleavings are recorded in a list and compared exactly.  Every case that
involves IO runs on every backend; each run checks the scheduler is left
with no event, fd, timer or fiber (``fiber_helpers.run``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from fiber_helpers import backend, run  # noqa: F401 (fixtures)
from poorio.channel import Channel, Queue
from poorio.errors import BusyResourceError, Cancelled, ClosedResourceError
from poorio.ops import (
    WOULD_BLOCK,
    Operation,
    always,
    choice,
    join_op,
    never,
    readable_op,
    sleep_op,
    sleep_until_op,
    timeout_op,
    writable_op,
)
from poorio import checkpoint, notify_closing, sleep, spawn, stats
from poorio.sync import Cond, Lock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _events() -> int:
    return stats().events


# -- perform, wrap, always, never ------------------------------------------------


def test_perform_tries_first_and_does_not_yield_when_ready():
    log = []

    async def other():
        log.append("other")

    async def main():
        spawn(other)
        switches = stats().switches
        log.append(await always(1).perform())
        log.append(await always(2).wrap(lambda v: v * 10).perform())
        log.append(stats().switches == switches)
        await checkpoint()
        log.append("after")

    run(main)
    assert log == [1, 20, True, "other", "after"]


def test_wrap_composes_in_order_and_errors_propagate():
    class Boom(Exception):
        pass

    def boom(_):
        raise Boom("from wrap")

    async def main():
        op = always(3).wrap(lambda v: v + 1).wrap(lambda v: v * 2)
        assert await op.perform() == 8
        assert await op.perform() == 8  # an operation is a value: perform it again
        with pytest.raises(Boom, match="from wrap"):
            await always(0).wrap(boom).perform()
        return "ok"

    assert run(main) == "ok"


def test_user_defined_operation():
    """A new kind of operation: ready once a counter reaches a target."""

    class Counter:
        def __init__(self):
            self.n = 0
            self.waiters = []

        def bump(self):
            self.n += 1
            for target, waiter in list(self.waiters):
                if self.n >= target:
                    self.waiters.remove((target, waiter))
                    waiter.complete(self.n)

    class ReachOp(Operation):
        def __init__(self, counter, target):
            self.counter, self.target = counter, target

        def attempt(self):
            return self.counter.n if self.counter.n >= self.target else WOULD_BLOCK

        def block(self, waiter):
            self.counter.waiters.append((self.target, waiter))

    log = []

    async def bumper(counter):
        for _ in range(3):
            log.append(f"bump{counter.n + 1}")
            counter.bump()
            await checkpoint()

    async def main():
        counter = Counter()
        spawn(bumper, counter)
        log.append(await ReachOp(counter, 2).wrap(lambda n: f"reached {n}").perform())
        log.append(await ReachOp(counter, 1).perform())

    run(main)
    assert log == ["bump1", "bump2", "reached 2", 2, "bump3"]


def test_never_parks_until_cancelled_and_empty_choice_is_never():
    async def waiter(op):
        await op.perform()

    async def main():
        f = spawn(waiter, never())
        g = spawn(waiter, choice())
        h = spawn(waiter, choice(never(), never()))
        await sleep(0.01)
        assert not (f.done() or g.done() or h.done())
        for fiber in (f, g, h):
            fiber.cancel()
        for fiber in (f, g, h):
            with pytest.raises(Cancelled):
                await fiber.join()
        assert await choice(never(), always("x")).perform() == "x"
        return _events()

    assert run(main) == 0


def test_choice_flattens_nested_choices_and_rejects_non_operations():
    async def main():
        inner = choice(always("a"), always("b"))
        op = choice(inner, always("c"))
        seen = set()
        for _ in range(200):
            seen.add(await op.perform())
        return seen

    assert run(main) == {"a", "b", "c"}  # flat: three equal branches, not a + (b|c)
    with pytest.raises(TypeError, match="operations"):
        choice(always(1), "not an op")


# -- choice ------------------------------------------------------------------------


def test_choice_is_fair_over_ready_branches():
    async def main():
        op = choice(*(always(i) for i in range(4)))
        wins = [0] * 4
        for _ in range(400):
            wins[await op.perform()] += 1
        return wins

    wins = run(main)
    assert all(w > 0 for w in wins), wins  # a branch never winning 400 draws: p ~ 4 * 0.75**400


def test_choice_is_fair_over_ready_channels():
    async def main():
        queues = [Queue(1000) for _ in range(3)]
        for i, q in enumerate(queues):
            for _ in range(300):
                await q.put(i)
        op = choice(*(q.get_op() for q in queues))
        wins = [0, 0, 0]
        for _ in range(300):
            wins[await op.perform()] += 1
        return wins, [len(q) for q in queues]

    wins, left = run(main)
    assert all(w > 0 for w in wins), wins
    assert sum(left) == 900 - 300  # exactly one value taken per perform


def test_choice_over_a_list_built_at_run_time():
    log = []

    async def main():
        channels = [Channel() for _ in range(5)]

        async def sender(i):
            await sleep(0.001 * (5 - i))
            await channels[i].put(i)

        for i in range(5):
            spawn(sender, i)
        pending = list(range(5))
        while pending:
            op = choice(*(channels[i].get_op().wrap(lambda v, i=i: (i, v)) for i in pending))
            i, v = await op.perform()
            log.append(v)
            pending.remove(i)

    run(main)
    assert sorted(log) == [0, 1, 2, 3, 4]


def test_choice_never_synchronises_with_two_parties():
    log = []

    async def putter(ch, value):
        await ch.put(value)
        log.append(f"put {value}")

    async def main():
        a, b = Channel(), Channel()
        result = spawn(lambda: choice(a.get_op(), b.get_op()).perform())
        await checkpoint()  # it parks on both
        assert a.waiting() == (1, 0) and b.waiting() == (1, 0)
        pa = spawn(putter, a, "A")
        pb = spawn(putter, b, "B")
        await checkpoint()
        await checkpoint()
        got = await result.join()
        log.append(f"got {got}")
        assert a.waiting() == (0, 0) and b.waiting() == (0, 1)  # "B" still waits for a getter
        log.append(f"then {await b.get()}")
        await pb.join()
        await pa.join()

    run(main)
    # a get from a parked putter does not yield: "then B" before the putter resumes
    assert log == ["put A", "got A", "then B", "put B"]


def test_choice_between_two_puts_hands_over_exactly_one():
    async def main():
        a, b = Channel(), Channel()
        getter_a = spawn(a.get)
        getter_b = spawn(b.get)
        await checkpoint()
        which = await choice(a.put_op("x").wrap(lambda _: "a"), b.put_op("x").wrap(lambda _: "b")).perform()
        await checkpoint()
        done = [getter_a.done(), getter_b.done()]
        (getter_b if which == "a" else getter_a).cancel()
        return which, done

    which, done = run(main)
    assert done == ([True, False] if which == "a" else [False, True])


# -- choice between IO, a channel and a timeout, on every backend -------------------


@pytest.mark.parametrize("winner", ["io", "channel", "timeout"])
def test_choice_between_io_channel_and_timeout(backend, pair, winner):
    a, b = pair
    log = []

    async def other(ch):
        await sleep(0.01)
        if winner == "io":
            b.send(b"ping")
            log.append("sent")
        elif winner == "channel":
            await ch.put("message")
            log.append("put")

    async def main():
        ch = Channel()
        helper = spawn(other, ch)
        op = choice(
            readable_op(a).wrap(lambda _: ("io", a.recv(16))),
            ch.get_op().wrap(lambda v: ("channel", v)),
            timeout_op(0.05 if winner == "timeout" else 5).wrap(lambda _: ("timeout", None)),
        )
        log.append(await op.perform())
        await helper.join()
        log.append((_events(), ch.waiting()))

    run(main, backend=backend)
    expected = {
        "io": ["sent", ("io", b"ping")],
        "channel": ["put", ("channel", "message")],  # a put to a parked getter does not yield
        "timeout": [("timeout", None)],
    }[winner]
    assert log == expected + [(0, (0, 0))]


def test_writable_op_and_readable_op(backend, pair):
    a, b = pair

    async def main():
        await writable_op(a).perform()
        a.send(b"x")
        await readable_op(b).wrap(lambda _: None).perform()
        return b.recv(1), _events()

    assert run(main, backend=backend) == (b"x", 0)


def test_busy_fd_in_a_choice_unregisters_the_other_branches(backend, pair):
    a, _ = pair

    async def reader():
        await readable_op(a).perform()

    async def main():
        q = Queue(1)
        first = spawn(reader)
        await checkpoint()
        with pytest.raises(BusyResourceError):
            await choice(q.get_op(), sleep_op(5), readable_op(a)).perform()
        leftover = (q.waiting(), _events())
        first.cancel()
        with pytest.raises(Cancelled):
            await first.join()
        return leftover, _events()

    # one event left: the first reader's; none of the failed choice's
    assert run(main, backend=backend) == (((0, 0), 1), 0)


def test_closing_an_fd_fails_a_choice_waiting_on_it(backend, pair):
    a, _ = pair

    async def main():
        q = Queue(1)

        async def closer():
            await checkpoint()
            notify_closing(a)

        spawn(closer)
        with pytest.raises(ClosedResourceError):
            await choice(readable_op(a), q.get_op(), timeout_op(5)).perform()
        return q.waiting(), _events()

    assert run(main, backend=backend) == ((0, 0), 0)


# -- cancellation leaves nothing behind ----------------------------------------------


def test_cancelled_choice_leaves_no_registration(backend, pair):
    a, _ = pair

    async def sleeper():
        await sleep(10)

    async def main():
        ch, q, cond, lock = Channel(), Queue(1), Cond(), Lock()
        await lock.acquire()
        target = spawn(sleeper)
        await checkpoint()  # it arms its timer
        before = _events()
        op = choice(
            readable_op(a),
            never(),
            ch.get_op(),
            ch.put_op("lost?"),
            q.get_op(),
            cond.wait_op(),
            lock.acquire_op(),
            sleep_op(10),
            join_op(target),
        )
        blocked = spawn(op.perform)
        await checkpoint()
        during = (_events() - before, ch.waiting(), q.waiting(), len(cond._waiters), len(lock._waiters),
                  len(target._joiners))
        blocked.cancel()
        with pytest.raises(Cancelled):
            await blocked.join()
        after = (_events() - before, ch.waiting(), q.waiting(), len(cond._waiters), len(lock._waiters),
                 len(target._joiners))
        target.cancel()
        lock.release()
        return during, after

    during, after = run(main, backend=backend)
    assert during == (2, (1, 1), (1, 0), 1, 1, 1)  # the fd and the timer; one entry everywhere
    assert after == (0, (0, 0), (0, 0), 0, 0, 0)


def test_cancelled_choice_in_a_timeout_scope_leaves_nothing(backend, pair):
    from poorio import move_on_after

    a, _ = pair

    async def main():
        ch = Channel()
        with move_on_after(0.02) as scope:
            await choice(readable_op(a), ch.get_op(), sleep_op(10)).perform()
        return scope.cancelled_caught, ch.waiting(), _events()

    assert run(main, backend=backend) == (True, (0, 0), 0)


# -- timers ----------------------------------------------------------------------------


def test_sleep_op_waits_afresh_but_timeout_op_keeps_its_deadline():
    # The deadline is ten naps long: a stall before the first nap's perform
    # (a loaded machine) must outlast nine naps to leave no nap before it;
    # with a deadline of 2.5 naps, 30 ms did.  t0 is read before the deadline
    # is fixed, so elapsed counts from before it.
    async def main():
        t0 = time.monotonic()
        nap = sleep_op(0.02)
        deadline = timeout_op(0.2)
        naps = 0
        while await choice(nap.wrap(lambda _: True), deadline.wrap(lambda _: False)).perform():
            naps += 1
        elapsed = time.monotonic() - t0
        ready_now = await choice(deadline.wrap(lambda _: "deadline"), sleep_op(1)).perform()
        return naps, elapsed, ready_now

    naps, elapsed, ready_now = run(main)
    assert 1 <= naps <= 10 and 0.195 <= elapsed < 5, (naps, elapsed)
    assert ready_now == "deadline"  # it stays ready


def test_sleep_until_op_and_zero_sleeps():
    async def main():
        switches = stats().switches
        await sleep_op(0).perform()
        await sleep_until_op(time.monotonic() - 1).perform()
        no_yield = stats().switches == switches
        t0 = time.monotonic()
        await sleep_until_op(t0 + 0.01).perform()
        return no_yield, time.monotonic() - t0

    no_yield, waited = run(main)
    assert no_yield and waited >= 0.009
    with pytest.raises(ValueError):
        sleep_op(-1)
    with pytest.raises(TypeError):
        timeout_op("1")


# -- join_op -------------------------------------------------------------------------


def test_join_op_returns_result_or_raises_and_can_race_a_timeout():
    class Boom(Exception):
        pass

    async def slow():
        await sleep(0.05)
        return "slow"

    async def quick():
        return "quick"

    async def failing():
        raise Boom("child failed")

    async def main():
        s, q, f = spawn(slow), spawn(quick), spawn(failing)
        log = [await choice(join_op(s), timeout_op(0.005).wrap(lambda _: "timeout")).perform()]
        log.append(await join_op(q).perform())
        with pytest.raises(Boom):
            await join_op(f).perform()
        log.append(await choice(join_op(s), timeout_op(5)).perform())
        log.append(s._joiners)
        return log

    assert run(main) == ["timeout", "quick", "slow", None]


def test_join_op_on_itself_raises():
    from poorio import current

    async def main():
        with pytest.raises(RuntimeError, match="itself"):
            await join_op(current()).perform()
        return "ok"

    assert run(main) == "ok"


# -- demos -----------------------------------------------------------------------------


def _demo(name: str) -> str:
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "demos", name)],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_demo_fibonacci():
    assert _demo("fibonacci.py").split() == ["0", "1", "1", "2", "3", "5", "8", "13", "21", "34", "quit"]


def test_demo_timeouts():
    assert _demo("timeouts.py").splitlines() == [
        "answer after 0.01s",
        "gave up after 0.01s",
        "ticks before the deadline: several, in order",
    ]
