"""Groups: children finish before the block ends; failures cancel siblings and propagate as a group."""

from __future__ import annotations

import pytest

from fiber_helpers import backend, run  # noqa: F401 (fixtures)
from poorio import CancelScope, Group, checkpoint, current, move_on_after, sleep, spawn, stats
from poorio.errors import BaseExceptionGroup, Cancelled, DeadlockError, ExceptionGroup
from poorio._core.traps import suspend


class Boom(Exception):
    pass


async def _steps(log, name, n):
    for i in range(n):
        log.append(f"{name}{i}")
        await sleep(0)


async def _sleeper(log, name, seconds=10):
    try:
        await sleep(seconds)
        log.append(f"{name} woke")
    except Cancelled:
        log.append(f"{name} cancelled")
        raise


async def _fail_after_sleep(log, name, seconds, error):
    await sleep(seconds)
    log.append(f"{name} fails")
    raise error


def test_group_waits_for_its_children_in_exact_order(backend):
    log = []

    async def main():
        async with Group() as g:
            a = g.spawn(_steps, log, "a", 2)
            b = g.spawn(_steps, log, "b", 2)
            log.append("body done")
        log.append("group done")
        assert a.done() and b.done()

    run(main, backend=backend)
    assert log == ["body done", "a0", "b0", "a1", "b1", "group done"]


def test_child_results_are_readable_after_the_group(backend):
    async def double(x):
        await sleep(0)
        return 2 * x

    async def main():
        async with Group() as g:
            fibers = [g.spawn(double, i) for i in range(5)]
        return [f.result() for f in fibers]

    assert run(main, backend=backend) == [0, 2, 4, 6, 8]


def test_a_failing_child_cancels_siblings_and_body_and_propagates(backend):
    log = []

    async def main():
        with pytest.raises(ExceptionGroup) as info:
            async with Group() as g:
                g.spawn(_sleeper, log, "sibling")
                g.spawn(_fail_after_sleep, log, "child", 0.01, Boom("child broke"))
                try:
                    await sleep(10)
                except Cancelled:
                    log.append("body cancelled")
                    raise
        assert [type(e) for e in info.value.exceptions] == [Boom]
        assert str(info.value.exceptions[0]) == "child broke"
        assert stats().fibers == 1

    run(main, backend=backend)
    assert log == ["child fails", "body cancelled", "sibling cancelled"]  # a scope before its children


def test_two_failures_are_both_reported(backend):
    async def fail_when_woken(parked, error):
        await suspend(parked.append)
        raise error

    async def main():
        parked = []
        with pytest.raises(ExceptionGroup) as info:
            async with Group() as g:
                g.spawn(fail_when_woken, parked, Boom("x"))
                g.spawn(fail_when_woken, parked, ValueError("y"))
                await sleep(0)
                for susp in parked:  # both ready in one batch: the second fails
                    susp.complete()  # before its sibling's failure can cancel it
        return [str(e) for e in info.value.exceptions]

    assert run(main, backend=backend) == ["x", "y"]


def test_body_error_cancels_children_and_propagates_unchanged(backend):
    log = []

    async def main():
        with pytest.raises(Boom, match="body broke"):
            async with Group() as g:
                g.spawn(_sleeper, log, "child")
                await sleep(0)
                raise Boom("body broke")

    run(main, backend=backend)
    assert log == ["child cancelled"]


def test_body_error_and_child_error_are_grouped(backend):
    async def main():
        with pytest.raises(ExceptionGroup) as info:
            async with Group() as g:

                async def child():
                    try:
                        await sleep(10)
                    finally:
                        raise ValueError("child failed while cancelled")

                g.spawn(child)
                await sleep(0)
                raise Boom("body broke")
        return [type(e).__name__ for e in info.value.exceptions]

    assert run(main, backend=backend) == ["Boom", "ValueError"]


def test_group_cancel_scope_stops_everything_quietly(backend):
    log = []

    async def main():
        async with Group() as g:
            g.spawn(_sleeper, log, "a")
            g.spawn(_sleeper, log, "b")
            await sleep(0)
            g.cancel_scope.cancel()
            log.append("cancel called")
        log.append(f"caught={g.cancel_scope.cancelled_caught}")

    run(main, backend=backend)
    assert log == ["cancel called", "a cancelled", "b cancelled", "caught=True"]


def test_outer_scope_cancels_a_group_waiting_at_its_exit(backend):
    log = []

    async def main():
        with move_on_after(0.01) as outer:
            async with Group() as g:
                g.spawn(_sleeper, log, "child")
            log.append("not reached")
        log.append(f"outer caught={outer.cancelled_caught} group caught={g.cancel_scope.cancelled_caught}")

    run(main, backend=backend)
    assert log == ["child cancelled", "outer caught=True group caught=False"]


def test_cancelling_the_parent_fiber_cancels_its_group(backend):
    log = []

    async def parent():
        async with Group() as g:
            g.spawn(_sleeper, log, "c1")
            g.spawn(_sleeper, log, "c2")
        log.append("not reached")

    async def main():
        f = spawn(parent)
        await sleep(0.005)
        f.cancel()
        with pytest.raises(Cancelled):
            await f.join()

    run(main, backend=backend)
    assert log == ["c1 cancelled", "c2 cancelled"]


def test_children_in_a_shielded_group_survive_outer_cancellation(backend):
    log = []

    async def main():
        with move_on_after(0.005) as outer:
            with CancelScope(shield=True):
                async with Group() as g:
                    g.spawn(_sleeper, log, "child", 0.02)
            await checkpoint()
        log.append(outer.cancelled_caught)

    run(main, backend=backend)
    assert log == ["child woke", True]


def test_nested_group_failure_propagates_outward(backend):
    log = []

    async def inner():
        async with Group() as g:
            g.spawn(_fail_after_sleep, log, "deep", 0.005, Boom("deep"))
            g.spawn(_sleeper, log, "inner sibling")

    async def main():
        with pytest.raises(ExceptionGroup) as info:
            async with Group() as g:
                g.spawn(inner)
                g.spawn(_sleeper, log, "outer sibling")
        nested = info.value.exceptions[0]
        assert isinstance(nested, ExceptionGroup)
        assert isinstance(nested.exceptions[0], Boom)

    run(main, backend=backend)
    assert log[0] == "deep fails"
    assert sorted(log[1:]) == ["inner sibling cancelled", "outer sibling cancelled"]


def test_children_may_spawn_siblings(backend):
    log = []

    async def main():
        async with Group() as g:

            async def spawner():
                await sleep(0)
                g.spawn(_steps, log, "late", 2)
                log.append("spawned late")

            g.spawn(spawner)
        log.append("all done")

    run(main, backend=backend)
    assert log == ["spawned late", "late0", "late1", "all done"]


def test_group_misuse(backend):
    async def main():
        g = Group()
        with pytest.raises(RuntimeError):
            g.spawn(sleep, 0)
        async with g:
            pass
        with pytest.raises(RuntimeError):
            g.spawn(sleep, 0)
        with pytest.raises(RuntimeError, match="only once"):
            async with g:
                pass

    run(main, backend=backend)


def test_group_children_are_not_logged_as_unjoined(backend, caplog):
    async def main():
        with pytest.raises(ExceptionGroup):
            async with Group() as g:
                g.spawn(_fail_after_sleep, [], "x", 0, Boom("seen by the group"))

    run(main, backend=backend)
    assert not [r for r in caplog.records if r.name == "poorio"]


def test_keyboard_interrupt_in_a_child_becomes_a_base_exception_group(backend):
    async def child():
        raise KeyboardInterrupt

    async def main():
        async with Group() as g:
            g.spawn(child)
            await sleep(10)

    with pytest.raises(BaseExceptionGroup) as info:
        run(main, backend=backend)
    assert not isinstance(info.value, Exception)
    assert isinstance(info.value.exceptions[0], KeyboardInterrupt)


def test_group_exit_is_not_blocked_by_the_parent_being_current(backend):
    async def main():
        async with Group():
            assert current() is not None
        return "empty group is fine"

    assert run(main, backend=backend) == "empty group is fine"


def test_exception_group_split_and_subgroup():
    group = BaseExceptionGroup("outer", [Boom("a"), ValueError("b"), ExceptionGroup("inner", [Boom("c")])])
    assert isinstance(group, ExceptionGroup)  # all Exceptions: the narrower class
    booms, rest = group.split(Boom)
    assert [type(e) for e in rest.exceptions] == [ValueError]
    assert str(booms.exceptions[0]) == "a"
    assert str(booms.exceptions[1].exceptions[0]) == "c"
    assert group.subgroup(KeyError) is None
    assert group.message == "outer"
    with pytest.raises(TypeError):
        ExceptionGroup("x", [KeyboardInterrupt()])


def test_deadlock_at_group_exit_stops_the_children_and_reaches_run(backend):
    log = []

    async def stuck():
        try:
            await suspend(lambda susp: None, "a reply that never comes")
        finally:
            log.append("child unwound")

    async def main():
        try:
            async with Group() as g:
                g.spawn(stuck, name="stuck-child")
        finally:
            log.append(f"group left with {len(g._children)} children running")

    with pytest.raises(DeadlockError, match="stuck-child"):
        run(main, backend=backend)
    assert log == ["child unwound", "group left with 0 children running"]
