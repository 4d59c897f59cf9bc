"""Fibers behave as ordinary Python code expects: contextvars, async generators, threads, deadlock reports, Group.start."""

from __future__ import annotations

import contextvars
import decimal
import gc
import sys
import threading
import time

import pytest

import poorio
from fiber_helpers import backend, run  # noqa: F401 (fixtures)
from poorio import Channel, Event, Group, Queue, Scheduler, sleep, spawn
from poorio.errors import Cancelled, ClosedResourceError, DeadlockError

request_id = contextvars.ContextVar("request_id", default=None)


# -- contextvars: each fiber has its own copy of the context it was spawned from ------------


def test_fibers_that_set_a_var_each_read_back_their_own(backend):
    async def handle(n, seen):
        request_id.set(n)
        await sleep(0.001 * (3 - n))  # interleave: each resumes after the others set theirs
        seen.append((n, request_id.get()))

    async def main():
        seen = []
        async with Group() as g:
            for n in range(3):
                g.spawn(handle, n, seen)
        return sorted(seen), request_id.get()

    assert run(main, backend=backend) == ([(0, 0), (1, 1), (2, 2)], None)


def test_a_child_inherits_the_spawners_values_and_keeps_its_own_changes(backend):
    async def child():
        inherited = request_id.get()
        request_id.set("child's")
        await sleep(0)
        return inherited, request_id.get()

    async def main():
        request_id.set("parent's")
        f = spawn(child)
        request_id.set("parent's, changed after the spawn")
        result = await f.join()
        return result, request_id.get()

    assert run(main, backend=backend) == (("parent's", "child's"), "parent's, changed after the spawn")


def test_run_copies_the_callers_context_and_nothing_leaks_out():
    token = request_id.set("caller's")
    try:

        async def main():
            seen = request_id.get()
            request_id.set("main's")
            return seen

        assert poorio.run(main) == "caller's"
        assert request_id.get() == "caller's"
    finally:
        request_id.reset(token)


def test_decimal_contexts_stay_per_fiber(backend):
    """decimal keeps its current context in a contextvar: a fiber's localcontext is its own."""

    async def compute(prec):
        with decimal.localcontext() as ctx:
            ctx.prec = prec
            await sleep(0.001 * prec)  # the other fiber enters its own localcontext meanwhile
            return str(decimal.Decimal(1) / decimal.Decimal(7))

    async def main():
        a, b = spawn(compute, 3), spawn(compute, 6)
        return await a.join(), await b.join(), decimal.getcontext().prec

    assert run(main, backend=backend) == ("0.143", "0.142857", decimal.getcontext().prec)


# -- async generators: abandoned ones are closed by a fiber, live ones when run() ends ----------


async def _counting(log, name="gen"):
    try:
        for i in range(100):
            yield i
    finally:
        await sleep(0.001)  # a cleanup that must await: needs a fiber to run in
        log.append(f"{name} cleaned up")


def test_an_abandoned_async_generator_runs_its_awaiting_cleanup(backend):
    async def main():
        log = []
        async for _ in _counting(log):
            break
        gc.collect()  # PyPy finalizes only on a collection
        for _ in range(100):
            if log:
                break
            await sleep(0.001)
        return log

    assert run(main, backend=backend) == ["gen cleaned up"]


def test_async_generators_still_alive_are_closed_before_run_returns(backend):
    log = []
    keep = []

    async def main():
        gen = _counting(log)
        keep.append(gen)  # alive after main ends: only run()'s shutdown can close it
        assert await gen.__anext__() == 0

    run(main, backend=backend)
    assert log == ["gen cleaned up"]


def test_the_previous_asyncgen_hooks_are_restored(backend):
    def firstiter(agen):
        pass

    before = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=firstiter)
    try:

        async def main():
            assert sys.get_asyncgen_hooks().firstiter is not firstiter
            raise ValueError("main fails")

        with pytest.raises(ValueError):
            run(main, backend=backend)
        assert sys.get_asyncgen_hooks().firstiter is firstiter
    finally:
        sys.set_asyncgen_hooks(*before)


def test_a_generator_dropped_in_a_worker_thread_is_closed_in_its_scheduler(backend):
    async def main():
        log = []
        gen = _counting(log)
        await gen.__anext__()
        holder = [gen]
        del gen
        await poorio.run_in_thread(holder.clear)  # the last reference dies in the worker
        gc.collect()
        for _ in range(200):
            if log:
                break
            await sleep(0.001)
        return log

    assert run(main, backend=backend) == ["gen cleaned up"]


def test_schedulers_in_two_threads_each_close_their_own_generators(backend):
    logs = {}

    def thread_main(name):
        log = logs.setdefault(name, [])

        async def main():
            gen = _counting(log, name)
            await gen.__anext__()
            main.gen = gen  # alive when run() ends
            await sleep(0.01)

        run(main, backend=backend)

    threads = [threading.Thread(target=thread_main, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert logs == {"a": ["a cleaned up"], "b": ["b cleaned up"]}


# -- threads: fiber primitives belong to one scheduler; from_thread is the way in -------------


def _in_two_schedulers(backend, main_a, main_b):
    """Run ``main_a(ready)`` in this thread and ``main_b(ready)`` in another; each gets a threading.Event pair."""
    ready = threading.Event()
    out = {}

    def other():
        try:
            out["b"] = run(main_b, ready, backend=backend)
        except BaseException as error:  # handed back to the test
            out["b"] = error

    t = threading.Thread(target=other)
    t.start()
    try:
        out["a"] = run(main_a, ready, t, backend=backend)
    finally:
        ready.set()
        t.join()
    return out["a"], out["b"]


def test_a_channel_shared_between_schedulers_refuses_the_crossing_wake_up(backend):
    chan = Channel()

    async def getter(ready, other_thread):
        got = spawn(chan.get)
        await sleep(0.01)  # parked now
        ready.set()
        await poorio.run_in_thread(other_thread.join)
        chan.close()
        with pytest.raises(poorio.EndOfChannel):
            await got.join()
        return "getter still parked, nothing lost"

    async def putter(ready):
        await poorio.run_in_thread(ready.wait)
        with pytest.raises(RuntimeError, match="another thread"):
            await chan.put("lost?")
        return "refused"

    assert _in_two_schedulers(backend, getter, putter) == ("getter still parked, nothing lost", "refused")


def test_an_event_set_from_another_scheduler_with_waiters_is_an_error(backend):
    event = Event()

    async def waiter(ready, other_thread):
        f = spawn(event.wait)
        await sleep(0.01)
        ready.set()
        await poorio.run_in_thread(other_thread.join)
        event.set()  # from its own scheduler: fine
        await f.join()
        return "woken by its own"

    async def setter(ready):
        await poorio.run_in_thread(ready.wait)
        with pytest.raises(RuntimeError, match="belong to one scheduler"):
            event.set()
        return "refused"

    assert _in_two_schedulers(backend, waiter, setter) == ("woken by its own", "refused")


def test_fibers_and_scopes_cannot_be_cancelled_from_another_thread(backend):
    async def main():
        f = spawn(sleep, 10)
        with poorio.CancelScope() as scope:
            errors = []

            def other():
                for target in (f, scope):
                    try:
                        target.cancel()
                    except RuntimeError as error:
                        errors.append(str(error))

            await poorio.run_in_thread(other)
            assert len(errors) == 2 and all("from_thread" in e for e in errors)
            poorio.from_thread  # noqa: B018 (the error names the way)
        f.cancel()
        return f.cancelled() or (await _joined(f)).cancelled()

    assert run(main, backend=backend) is True


async def _joined(fiber):
    try:
        await fiber.join()
    except Cancelled:
        pass
    return fiber


def test_from_thread_run_and_run_sync_carry_results_and_errors_back(backend):
    async def main():
        q = Queue(4)

        def work():
            poorio.from_thread.run(q.put, "from the worker")
            size = poorio.from_thread.run_sync(len, q)
            try:
                poorio.from_thread.run_sync(int, "not a number")
            except ValueError as error:
                failed = str(error)
            with pytest.raises(KeyError):
                poorio.from_thread.run(_raise_key_error)
            return size, failed

        size, failed = await poorio.run_in_thread(work)
        return size, failed, await q.get()

    assert run(main, backend=backend) == (1, "invalid literal for int() with base 10: 'not a number'", "from the worker")


async def _raise_key_error():
    await sleep(0)
    raise KeyError("async")


def test_from_thread_with_an_explicit_scheduler_from_a_plain_thread(backend):
    async def main():
        sched = poorio.current_scheduler()
        out = []
        t = threading.Thread(target=lambda: out.append(poorio.from_thread.run(_double, 21, scheduler=sched)))
        t.start()
        await poorio.run_in_thread(t.join)
        return out

    assert run(main, backend=backend) == [42]


async def _double(x):
    await sleep(0.001)
    return 2 * x


def test_from_thread_misuse_is_a_clear_error(backend):
    with pytest.raises(RuntimeError, match="scheduler="):
        poorio.from_thread.run_sync(len, [])

    async def main():
        with pytest.raises(RuntimeError, match="own thread"):
            poorio.from_thread.run_sync(len, [], scheduler=poorio.current_scheduler())
        return poorio.current_scheduler()

    ended = run(main, backend=backend)
    with pytest.raises(ClosedResourceError):
        poorio.from_thread.run_sync(len, [], scheduler=ended)


def test_a_call_posted_as_the_scheduler_closes_is_answered(backend):
    """A request already posted when the scheduler closes gets ClosedResourceError, never a hang."""
    with Scheduler(backend, 16) as sched:

        async def main():
            return None

        sched.run(main)  # finished, not yet closed
        out = []
        t = threading.Thread(target=lambda: out.append(_capture(poorio.from_thread.run_sync, len, [], scheduler=sched)))
        t.start()
        deadline = time.monotonic() + 10
        while sched.notifier.statistics().posted == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
    t.join(10)
    assert not t.is_alive() and len(out) == 1 and isinstance(out[0], ClosedResourceError)


def _capture(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except BaseException as error:
        return error


def test_cancelling_the_calling_fiber_cancels_its_from_thread_fiber(backend):
    async def main():
        started = threading.Event()
        seen = []

        def work():
            started.set()
            seen.append(_capture(poorio.from_thread.run, sleep, 30))  # the thread sees Cancelled

        async def caller():
            await poorio.run_in_thread(work)  # waits for the thread, which ends at once
            await sleep(0)  # and here the caller meets its own cancellation

        f = spawn(caller)
        await poorio.run_in_thread(started.wait)
        await sleep(0.01)
        began = time.monotonic()
        f.cancel()
        with pytest.raises(Cancelled):
            await f.join()
        return type(seen[0]), time.monotonic() - began < 10

    assert run(main, backend=backend) == (Cancelled, True)


# -- the deadlock report names every fiber of a cycle and never recurses ----------------------


def test_a_two_fiber_join_cycle_is_reported_by_name(backend):
    async def main():
        me = poorio.current()
        peer = spawn(me.join, name="peer")
        await sleep(0)
        await peer.join()

    with pytest.raises(DeadlockError) as caught:
        run(main, backend=backend)
    text = str(caught.value)
    assert "waiting on join of #2 'peer'" in text and "peer: waiting on join of #1" in text


def test_a_three_fiber_join_cycle_is_reported_by_name(backend):
    async def main():
        me = poorio.current()
        fibers = {}

        async def join_b():
            await fibers["b"].join()

        fibers["a"] = spawn(join_b, name="A")
        fibers["b"] = spawn(me.join, name="B")
        await sleep(0)
        await fibers["a"].join()

    with pytest.raises(DeadlockError) as caught:
        run(main, backend=backend)
    text = str(caught.value)
    for line in ("waiting on join of #2 'A'", "A: waiting on join of #3 'B'", "B: waiting on join of #1"):
        assert line in text


def test_a_fiber_joining_itself_is_an_error_at_once(backend):
    async def main():
        me = poorio.current()
        with pytest.raises(RuntimeError, match="cannot join itself"):
            await me.join()
        with pytest.raises(RuntimeError, match="cannot join itself"):
            await poorio.join_op(me).perform()
        return "survived"

    assert run(main, backend=backend) == "survived"


# -- Group.start: a child says when it is ready -----------------------------------------------


async def _server(log, fail_before=False, forget=False, *, task_status):
    await sleep(0.001)
    if fail_before:
        raise OSError("bind failed")
    if forget:
        return "never started"
    task_status.started(8080)
    log.append("serving")
    await sleep(0.005)
    log.append("done")


def test_start_returns_the_started_value_and_the_child_runs_on_in_the_group(backend):
    async def main():
        log = []
        async with Group() as g:
            port = await g.start(_server, log)
            log.append(f"started on {port}")
        return log

    assert run(main, backend=backend) == ["serving", "started on 8080", "done"]


def test_start_raises_what_the_child_raised_before_it_started(backend):
    async def main():
        async with Group() as g:
            with pytest.raises(OSError, match="bind failed"):
                await g.start(_server, [], True)
            with pytest.raises(RuntimeError, match="without calling task_status.started"):
                await g.start(_server, [], False, True)
        return "group unharmed"

    assert run(main, backend=backend) == "group unharmed"


def test_started_twice_is_an_error(backend):
    async def twice(task_status):
        task_status.started(1)
        with pytest.raises(RuntimeError, match="already"):
            task_status.started(2)

    async def main():
        async with Group() as g:
            return await g.start(twice)

    assert run(main, backend=backend) == 1


def test_cancelling_the_starter_cancels_the_child_and_waits_for_it(backend):
    async def slow(log, task_status):
        try:
            await sleep(10)
        finally:
            log.append("child ended")

    async def main():
        log = []
        async with Group() as g:
            with poorio.move_on_after(0.01):
                await g.start(slow, log)
            log.append("start returned")
        return log

    assert run(main, backend=backend) == ["child ended", "start returned"]


def test_a_started_child_is_cancelled_with_its_group(backend):
    async def main():
        log = []
        async with Group() as g:
            await g.start(_server, log)
            g.cancel_scope.cancel()
        return log

    assert run(main, backend=backend) == ["serving"]
