"""Cancellation: Fiber.cancel at every kind of suspension point, cancel scopes, deadlines, shields.

Each suspension point -- sleep, IO wait, join, a bare suspension, group exit,
a checkpoint -- is cancelled, and the test checks that ``Cancelled`` arrived
there, that the registration is gone, and what ran in which order.
"""

from __future__ import annotations

import math
import socket
import time

import pytest

from fiber_helpers import backend, fill_send_buffer, run  # noqa: F401 (fixtures)
from poorio import (
    CancelScope,
    Group,
    checkpoint,
    current,
    fail_after,
    fail_at,
    move_on_after,
    move_on_at,
    sleep,
    spawn,
    stats,
    wait_readable,
    wait_writable,
)
from poorio.errors import Cancelled
from poorio._core.traps import suspend


async def _sleep_forever(res=None):
    await sleep(3600)


async def _read(res):
    await wait_readable(res.sock)


async def _write(res):
    await wait_writable(res.sock)


async def _join(res):
    await res.other.join()


async def _park(res):
    await suspend(lambda susp: None, "nothing")


async def _group_exit(res):
    async with Group() as g:
        g.spawn(_sleep_forever)


WAITERS = [_sleep_forever, _read, _write, _join, _park, _group_exit]


class _Resources:
    """What the waiters wait on: a socket that is neither readable nor writable, a fiber that never ends."""

    def __init__(self) -> None:
        self.sock, self.peer = socket.socketpair()
        fill_send_buffer(self.sock)
        self.other = spawn(_sleep_forever)

    async def close(self) -> None:
        self.other.cancel()
        await sleep(0)
        self.sock.close()
        self.peer.close()
        # only main is left: the group's child is gone too, and no registration stayed
        assert (stats().fibers, stats().events) == (1, 0)


@pytest.mark.parametrize("waiter", WAITERS)
def test_cancel_a_parked_fiber_at_each_kind_of_suspension_point(backend, waiter):
    log = []

    async def victim(res):
        try:
            await waiter(res)
        except Cancelled:
            log.append("cancelled")
            raise
        log.append("not reached")

    async def main():
        res = _Resources()
        try:
            f = spawn(victim, res)
            await sleep(0)  # let it park
            assert stats().events >= 1
            f.cancel()
            with pytest.raises(Cancelled):
                await f.join()
            assert f.cancelled()
        finally:
            await res.close()

    run(main, backend=backend)
    assert log == ["cancelled"]


def test_cancel_before_the_fiber_first_runs(backend):
    log = []

    async def victim():
        log.append("started")
        await checkpoint()
        log.append("not reached")

    async def main():
        f = spawn(victim)
        f.cancel()
        with pytest.raises(Cancelled):
            await f.join()

    run(main, backend=backend)
    assert log == ["started"]  # it runs to its first suspension point


def test_cancelling_the_current_fiber_raises_at_its_next_checkpoint(backend):
    log = []

    async def main():
        me = current()
        me.cancel()
        log.append("still running")
        try:
            await checkpoint()
        except Cancelled:
            log.append("cancelled")
        with pytest.raises(Cancelled):  # level-triggered: it stays cancelled
            await sleep(0)
        with CancelScope(shield=True):
            await sleep(0.001)  # a shield lets cleanup wait
            log.append("shielded sleep done")
        return "done"

    assert run(main, backend=backend) == "done"
    assert log == ["still running", "cancelled", "shielded sleep done"]


def test_cancel_a_finished_fiber_is_a_no_op(backend):
    async def child():
        return 7

    async def main():
        f = spawn(child)
        assert await f.join() == 7
        f.cancel()
        assert not f.cancelled() and f.result() == 7

    run(main, backend=backend)


def test_cancelled_is_not_an_exception(backend):
    async def victim():
        try:
            await sleep(10)
        except Exception:  # noqa: BLE001 - the point: this must not catch it
            return "swallowed"

    async def main():
        f = spawn(victim)
        await sleep(0)
        f.cancel()
        with pytest.raises(Cancelled):
            await f.join()

    assert not issubclass(Cancelled, Exception)
    run(main, backend=backend)


def test_cancel_scope_cancel_stops_the_block_and_catches(backend):
    log = []

    async def main():
        with CancelScope() as scope:
            log.append("inside")
            scope.cancel()
            log.append("cancel called")
            await sleep(10)
            log.append("not reached")
        log.append(f"after caught={scope.cancelled_caught}")

    run(main, backend=backend)
    assert log == ["inside", "cancel called", "after caught=True"]


def test_cancel_scope_cancelled_from_another_fiber(backend):
    async def main():
        scope = CancelScope()

        async def canceller():
            await sleep(0.01)
            scope.cancel()

        spawn(canceller)
        with scope:
            await sleep(10)
        assert scope.cancelled_caught and scope.cancel_called

    run(main, backend=backend)


def test_cancel_before_enter_takes_effect_at_enter(backend):
    async def main():
        scope = CancelScope()
        scope.cancel()
        with scope:
            await checkpoint()
        assert scope.cancelled_caught

    run(main, backend=backend)


def test_move_on_after_and_fail_after(backend):
    async def main():
        start = time.monotonic()
        with move_on_after(0.02) as scope:
            await sleep(10)
        elapsed = time.monotonic() - start
        assert scope.cancelled_caught and 0.02 <= elapsed < 5

        with move_on_after(5) as scope:
            await sleep(0.001)
        assert not scope.cancelled_caught

        with pytest.raises(TimeoutError):
            with fail_after(0.01):
                await sleep(10)

        with fail_after(5):
            await sleep(0)

        with pytest.raises(TimeoutError):
            with fail_at(time.monotonic() + 0.01):
                await sleep(10)

        with move_on_at(time.monotonic() - 1) as scope:  # deadline already past
            await sleep(10)
        assert scope.cancelled_caught

    run(main, backend=backend)


def test_deadline_can_move_while_inside(backend):
    async def main():
        with move_on_after(10) as scope:
            scope.deadline = time.monotonic() + 0.01
            await sleep(10)
        assert scope.cancelled_caught

        with move_on_after(0.01) as scope:
            scope.deadline = math.inf
            await sleep(0.03)
        assert not scope.cancelled_caught
        assert scope.deadline == math.inf

    run(main, backend=backend)


def test_nested_scopes_outer_deadline_first(backend):
    log = []

    async def main():
        with move_on_after(0.01) as outer:
            with move_on_after(10) as inner:
                try:
                    await sleep(10)
                finally:
                    log.append("inner block left")
            log.append("not reached: the outer scope is still cancelled")
        log.append((outer.cancelled_caught, inner.cancelled_caught))

    run(main, backend=backend)
    assert log == ["inner block left", (True, False)]


def test_when_both_scopes_are_cancelled_the_outer_one_catches(backend):
    log = []

    async def main():
        with CancelScope() as outer:
            with CancelScope() as inner:
                outer.cancel()
                inner.cancel()
                await checkpoint()
            log.append("not reached: the Cancelled goes on to the outer scope")
        log.append((outer.cancelled_caught, inner.cancelled_caught))

    run(main, backend=backend)
    assert log == [(True, False)]


def test_a_shielded_inner_scope_catches_its_own_cancellation(backend):
    log = []

    async def main():
        with CancelScope() as outer:
            with CancelScope(shield=True) as inner:
                outer.cancel()
                inner.cancel()
                await checkpoint()
            log.append("inner caught it")
            await checkpoint()
            log.append("not reached")
        log.append((outer.cancelled_caught, inner.cancelled_caught))

    run(main, backend=backend)
    assert log == ["inner caught it", (True, True)]


def test_shielded_scope_ignores_outer_cancellation(backend):
    log = []

    async def main():
        with move_on_after(0.01) as outer:
            with CancelScope(shield=True) as shield:
                await sleep(0.05)  # outlives the outer deadline
                log.append("shielded work finished")
            await checkpoint()  # the outer cancellation arrives here
            log.append("not reached")
        log.append((outer.cancelled_caught, shield.cancelled_caught))

    run(main, backend=backend)
    assert log == ["shielded work finished", (True, False)]


def test_shielded_scope_can_still_be_cancelled_itself(backend):
    async def main():
        with move_on_after(0.01, shield=True) as scope:
            await sleep(10)
        assert scope.cancelled_caught

    run(main, backend=backend)


def test_removing_a_shield_delivers_the_pending_cancellation(backend):
    log = []

    async def main():
        with CancelScope() as outer:
            with CancelScope(shield=True) as shield:

                async def unshield():
                    await sleep(0.01)
                    log.append("outer cancelled")
                    outer.cancel()
                    await sleep(0.01)
                    log.append("shield dropped")
                    shield.shield = False

                spawn(unshield)
                await sleep(10)
        log.append(outer.cancelled_caught)

    run(main, backend=backend)
    assert log == ["outer cancelled", "shield dropped", True]


def test_fiber_cancel_is_not_caught_by_an_inner_scope(backend):
    log = []

    async def victim():
        with move_on_after(10) as scope:
            try:
                await sleep(10)
            finally:
                log.append("unwound")
        log.append(f"not reached {scope}")

    async def main():
        f = spawn(victim)
        await sleep(0)
        f.cancel()
        with pytest.raises(Cancelled):
            await f.join()

    run(main, backend=backend)
    assert log == ["unwound"]


def test_cancel_scope_misuse(backend):
    async def main():
        scope = CancelScope()
        with scope:
            pass
        with pytest.raises(RuntimeError, match="only once"):
            with scope:
                pass
        a, b = CancelScope(), CancelScope()
        a.__enter__()
        b.__enter__()
        with pytest.raises(RuntimeError, match="out of order"):
            a.__exit__(None, None, None)
        b.__exit__(None, None, None)
        a.__exit__(None, None, None)

    run(main, backend=backend)
    with pytest.raises(RuntimeError):
        with CancelScope():
            pass


def test_timers_of_scopes_are_removed_when_the_block_ends(backend):
    async def main():
        for _ in range(10):
            with move_on_after(100):
                await sleep(0)
            with fail_after(100):
                await sleep(0)
        return stats().events

    assert run(main, backend=backend) == 0


def test_join_interrupted_by_the_joiners_scope_leaves_the_joined_fiber_running(backend):
    async def child():
        await sleep(0.03)
        return "finished anyway"

    async def main():
        f = spawn(child)
        with move_on_after(0.005) as scope:
            await f.join()
        assert scope.cancelled_caught and not f.done()
        return await f.join()

    assert run(main, backend=backend) == "finished anyway"


@pytest.mark.parametrize("waiter", WAITERS)
def test_a_deadline_interrupts_each_kind_of_suspension_point(backend, waiter):
    async def main():
        res = _Resources()
        try:
            with move_on_after(0.01) as scope:
                await waiter(res)
            assert scope.cancelled_caught
        finally:
            await res.close()

    run(main, backend=backend)


BAD_DEADLINES = [
    (lambda v: move_on_after(v), "seconds"),
    (lambda v: fail_after(v), "seconds"),
    (lambda v: move_on_at(v), "deadline"),
    (lambda v: fail_at(v), "deadline"),
    (lambda v: CancelScope(deadline=v), "deadline"),
]


@pytest.mark.parametrize("make, argument", BAD_DEADLINES)
def test_a_bad_deadline_is_refused_before_the_scope_joins_the_fibers_scopes(backend, make, argument):
    """A NaN (or a string) used to register the scope first: the block after it then broke run()."""

    async def main():
        async with Group() as g:  # the enclosing scope must come out intact
            with move_on_after(10) as outer:
                for bad, error in ((math.nan, ValueError), ("1", TypeError), (None, TypeError), (True, TypeError)):
                    with pytest.raises(error, match=argument):
                        with make(bad):
                            pass
                await sleep(0)
            g.spawn(sleep, 0)
        assert not outer.cancelled_caught
        scope = CancelScope()
        with pytest.raises(ValueError, match="deadline"):
            scope.deadline = math.nan
        assert scope.deadline == math.inf
        return "intact"

    assert run(main, backend=backend) == "intact"


def test_negative_timeouts_expire_at_once_and_infinite_ones_never_fire(backend):
    async def main():
        with move_on_after(-1) as scope:  # already past: the block stops at its first suspension point
            await sleep(1)
        assert scope.cancelled_caught
        for make in (move_on_after, fail_after):
            with make(math.inf) as scope:
                await sleep(0)
            assert scope.deadline == math.inf and not scope.cancel_called
        with move_on_at(-math.inf) as scope:  # a deadline long past: cancelled at once
            await sleep(1)
        assert scope.cancelled_caught

    run(main, backend=backend)
