"""The fiber scheduler: run, spawn, join, sleep, interleavings, error reporting, deadlocks, introspection.

Every case runs on every backend.  Interleavings are recorded in a list and
compared exactly; timing only ever appears as a generous safety net.
"""

from __future__ import annotations

import _thread
import logging
import socket
import sys
import threading
import time
import types

import pytest

import poorio
from poorio.platform import READABLE

from fiber_helpers import assert_clean, backend, run  # noqa: F401 (fixtures)
from poorio import (
    Fiber,
    Scheduler,
    checkpoint,
    current,
    dump,
    move_on_after,
    run as poorio_run,
    sleep,
    sleep_until,
    spawn,
    stats,
    wait_readable,
)
from poorio.errors import DeadlockError
from poorio._core.traps import suspend


async def _record(log, name, n):
    for i in range(n):
        log.append(f"{name}{i}")
        await sleep(0)
    return name


def test_run_returns_main_result(backend):
    async def main(a, b):
        return a + b

    assert run(main, 2, 3, backend=backend) == 5


def test_run_reraises_main_error(backend):
    class Boom(Exception):
        pass

    async def main():
        await sleep(0)
        raise Boom("main failed")

    with pytest.raises(Boom, match="main failed"):
        run(main, backend=backend)


def test_poorio_run_with_backend_and_capacity(backend):
    async def main():
        return stats().backend

    assert poorio_run(main, backend=backend, capacity=8) == backend


def test_sleep_zero_round_robin_exact_interleaving(backend):
    log = []

    async def main():
        a = spawn(_record, log, "a", 3)
        b = spawn(_record, log, "b", 3)
        log.append("main")
        return [await a.join(), await b.join()]

    assert run(main, backend=backend) == ["a", "b"]
    assert log == ["main", "a0", "b0", "a1", "b1", "a2", "b2"]


def test_spawn_does_not_run_the_child_until_the_parent_yields(backend):
    log = []

    async def child():
        log.append("child")

    async def main():
        f = spawn(child)
        log.append("spawned")
        assert not f.done()
        await checkpoint()
        log.append("after checkpoint")
        assert f.done()

    run(main, backend=backend)
    assert log == ["spawned", "child", "after checkpoint"]


def test_join_waits_and_returns_result(backend):
    log = []

    async def child():
        await sleep(0.01)
        log.append("child done")
        return 42

    async def main():
        f = spawn(child)
        value = await f.join()
        log.append("joined")
        assert await f.join() == 42  # joining a finished fiber returns at once
        return value

    assert run(main, backend=backend) == 42
    assert log == ["child done", "joined"]


def test_join_reraises_the_fibers_own_exception(backend):
    class Boom(Exception):
        pass

    async def child():
        await sleep(0)
        raise Boom("child failed")

    async def main():
        f = spawn(child)
        with pytest.raises(Boom, match="child failed") as info:
            await f.join()
        assert f.exception() is info.value
        with pytest.raises(Boom):
            f.result()

    run(main, backend=backend)


def test_many_joiners_all_wake_in_order(backend):
    log = []

    async def child():
        await sleep(0.005)
        return "x"

    async def joiner(f, name):
        log.append(f"{name} {await f.join()}")

    async def main():
        f = spawn(child)
        js = [spawn(joiner, f, n) for n in "pqr"]
        for j in js:
            await j.join()

    run(main, backend=backend)
    assert log == ["p x", "q x", "r x"]


def test_join_self_is_an_error(backend):
    async def main():
        with pytest.raises(RuntimeError, match="itself"):
            await current().join()

    run(main, backend=backend)


def test_result_before_done_is_an_error(backend):
    async def main():
        f = spawn(sleep, 0)
        with pytest.raises(RuntimeError, match="not finished"):
            f.result()
        with pytest.raises(RuntimeError, match="not finished"):
            f.exception()
        await f.join()

    run(main, backend=backend)


def test_current_name_and_repr(backend):
    async def worker():
        return current()

    async def main():
        me = current()
        assert isinstance(me, Fiber)
        assert me.name == "test_current_name_and_repr.<locals>.main"
        named = spawn(worker, name="the-worker")
        anonymous = spawn(worker)
        assert "the-worker" in repr(named) and "ready" in repr(named)
        assert "running" in repr(me)
        assert await named.join() is named
        assert anonymous.name.endswith("worker")
        await anonymous.join()
        assert "finished" in repr(named)

    run(main, backend=backend)


def test_current_outside_a_fiber_is_an_error():
    with pytest.raises(RuntimeError, match="no poorio scheduler"):
        current()
    with pytest.raises(RuntimeError):
        spawn(sleep, 0)


def test_spawn_needs_an_async_function(backend):
    def plain():
        return 1

    async def main():
        with pytest.raises(TypeError, match="async function"):
            spawn(plain)

    run(main, backend=backend)


def test_run_cannot_nest(backend):
    async def main():
        async def inner():
            pass

        with pytest.raises(RuntimeError, match="inside a running scheduler"):
            poorio_run(inner)

    run(main, backend=backend)


def test_awaiting_a_foreign_awaitable_raises_type_error_in_the_fiber(backend):
    @types.coroutine
    def foreign():
        yield "not a poorio trap"

    async def main():
        with pytest.raises(TypeError, match="not a poorio trap"):
            await foreign()
        return "survived"

    assert run(main, backend=backend) == "survived"


def test_sleeps_wake_in_deadline_order(backend):
    # Deadlines from one base: a stall while the fibers start (a loaded CI
    # machine) cannot reorder them, as per-fiber sleep(n / 200) could.
    log = []

    async def sleeper(base, n):
        await sleep_until(base + n / 200)
        log.append(n)

    async def main():
        base = time.monotonic()
        fibers = [spawn(sleeper, base, n) for n in (5, 1, 4, 2, 3, 0)]
        for f in fibers:
            await f.join()

    run(main, backend=backend)
    assert log == [0, 1, 2, 3, 4, 5]


def test_passed_deadlines_wake_in_deadline_order(backend):
    # A deadline that has passed still waits its turn behind earlier ones that
    # are due: it is not a checkpoint that jumps the queue.
    log = []

    async def sleeper(deadline, n):
        await sleep_until(deadline)
        log.append(n)

    async def main():
        now = time.monotonic()
        fibers = [spawn(sleeper, now - n, -n) for n in (1, 5, 2, 4, 3)]
        for f in fibers:
            await f.join()

    run(main, backend=backend)
    assert log == [-5, -4, -3, -2, -1]


def test_sleep_lasts_at_least_as_long_as_asked(backend):
    async def main():
        start = time.monotonic()
        await sleep(0.03)
        assert time.monotonic() - start >= 0.03
        deadline = time.monotonic() + 0.02
        await sleep_until(deadline)
        assert time.monotonic() >= deadline
        await sleep_until(deadline - 10)  # a past deadline does not wait

    run(main, backend=backend)


def test_sleep_rejects_negative_durations(backend):
    async def main():
        with pytest.raises(ValueError):
            await sleep(-1)
        with pytest.raises(TypeError):
            await sleep_until("soon")

    run(main, backend=backend)


def test_sleep_zero_never_touches_the_event_set(backend):
    async def spinner(n):
        for _ in range(n):
            await sleep(0)

    async def main():
        before = stats()
        fibers = [spawn(spinner, 100) for _ in range(3)]
        for f in fibers:
            await f.join()
        after = stats()
        return after.switches - before.switches, after.polls - before.polls

    switches, polls = run(main, backend=backend)
    assert switches >= 300
    assert polls <= switches // 64 + 1  # only the fairness polls: no timer or event per sleep(0)


def test_unjoined_failed_fiber_is_logged_with_traceback(backend, caplog):
    async def doomed():
        await sleep(0)
        raise LookupError("nobody is listening")

    async def main():
        spawn(doomed, name="doomed-one")
        for _ in range(3):
            await sleep(0)

    with caplog.at_level(logging.ERROR, logger="poorio"):
        run(main, backend=backend)
    records = [r for r in caplog.records if r.name == "poorio"]
    assert len(records) == 1
    record = records[0]
    assert "doomed-one" in record.getMessage()
    assert record.exc_info[0] is LookupError
    assert "raise LookupError" in caplog.text  # the traceback is in the log


def test_joined_or_cancelled_fibers_are_not_logged(backend, caplog):
    async def fails():
        raise LookupError("seen")

    async def sleeps():
        await sleep(10)

    async def main():
        f = spawn(fails)
        with pytest.raises(LookupError):
            await f.join()
        s = spawn(sleeps)
        await sleep(0)
        s.cancel()
        await sleep(0)
        assert s.cancelled()

    with caplog.at_level(logging.ERROR, logger="poorio"):
        run(main, backend=backend)
    assert not [r for r in caplog.records if r.name == "poorio"]


def test_keyboard_interrupt_in_an_unjoined_fiber_stops_run(backend):
    async def interrupted():
        raise KeyboardInterrupt

    async def main():
        spawn(interrupted)
        await sleep(10)

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run(main, backend=backend)
    assert time.monotonic() - start < 5


def test_fibers_left_when_main_returns_are_cancelled_and_finish(backend):
    log = []

    async def background(name):
        try:
            await sleep(10)
        finally:
            log.append(f"{name} cleaned up")

    async def main():
        spawn(background, "x")
        spawn(background, "y")
        await sleep(0)
        return "main done"

    assert run(main, backend=backend) == "main done"
    assert log == ["x cleaned up", "y cleaned up"]


def test_deadlock_report_names_the_blocked_fibers(backend):
    async def stuck():
        await suspend(lambda susp: None, "a message that never comes")

    async def main():
        f = spawn(stuck, name="stuck-fiber")
        await f.join()

    with pytest.raises(DeadlockError) as info:
        run(main, backend=backend)
    text = str(info.value)
    assert "stuck-fiber" in text
    assert "a message that never comes" in text
    assert "main" in text


def test_deadlock_lets_main_clean_up_first(backend):
    log = []

    async def main():
        try:
            await suspend(lambda susp: None, "nothing")
        except DeadlockError:
            log.append("main saw the deadlock")
            raise

    with pytest.raises(DeadlockError):
        run(main, backend=backend)
    assert log == ["main saw the deadlock"]


def test_stats_and_dump(backend):
    async def sleeper():
        await sleep(10)

    async def reader(sock):
        await wait_readable(sock)

    async def main():
        import socket

        a, b = socket.socketpair()
        try:
            s1 = spawn(sleeper, name="sleepy")
            r = spawn(reader, a, name="reader")
            spawn(checkpoint, name="ready-one")
            await sleep(0)
            st = stats()
            assert st.backend == backend
            assert (st.fibers, st.ready, st.io_waits, st.sleeping) == (4, 1, 1, 1)
            assert st.events == 2 and st.timers == 1 and st.switches >= 4
            with move_on_after(100):
                assert stats().timers == 2  # a scope's deadline is a timer too
            text = dump()
            lines = text.splitlines()
            assert len(lines) == 4
            assert any("ready-one" in line and "ready" in line.split(":", 1)[1] for line in lines)
            assert any("sleepy" in line and "sleep" in line for line in lines)
            assert any("reader" in line and f"readable fd {a.fileno()}" in line for line in lines)
            assert any("main" in line and "running" in line for line in lines)
            s1.cancel()
            r.cancel()
        finally:
            await sleep(0)
            a.close()
            b.close()

    run(main, backend=backend)


def test_fibers_table_and_counters(backend):
    """``fibers()`` lists each live fiber's state and wait; the counters only grow."""
    import time

    async def sleeper():
        await sleep(10)

    async def main():
        before = stats()
        s1 = spawn(sleeper, name="sleepy")
        spawn(checkpoint, name="ready-one")
        await sleep(0)
        table = {info.name.rsplit(".", 1)[-1]: info for info in poorio.fibers()}
        assert [info.id for info in poorio.fibers()] == sorted(info.id for info in table.values())
        assert table["main"].state == "running" and table["main"].waiting is None
        assert table["ready-one"].state == "ready" and table["ready-one"].since is None
        sleepy = table["sleepy"]
        assert sleepy.state == "waiting" and "sleep" in sleepy.waiting
        assert time.monotonic() - 5 < sleepy.since <= time.monotonic()  # as of the loop's last poll
        with pytest.raises(AttributeError):
            sleepy.state = "ready"
        await sleep(0.01)  # a timer delivered through a poll of the pool
        after = stats()
        assert after.capacity == 64 and after.fds == 0
        assert after.switches > before.switches and after.polls > before.polls
        assert after.delivered > before.delivered
        s1.cancel()

    run(main, backend=backend)


def test_several_schedulers_run_in_parallel_threads(backend):
    results = {}

    async def count(name):
        total = 0
        for i in range(200):
            total += i
            await sleep(0)
        await sleep(0.01)
        return name, total

    def thread_main(name):
        results[name] = run(count, name, backend=backend)

    threads = [threading.Thread(target=thread_main, args=(n,)) for n in ("t1", "t2", "t3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == {n: (n, sum(range(200))) for n in ("t1", "t2", "t3")}


def test_busy_fibers_do_not_starve_io(backend):
    import socket

    async def spinner(flag):
        while not flag:
            await sleep(0)

    async def main():
        a, b = socket.socketpair()
        flag = []
        try:
            s = spawn(spinner, flag)
            b.send(b"!")
            await wait_readable(a)  # only reachable if the loop polls while spinner spins
            flag.append(a.recv(1))
            await s.join()
        finally:
            a.close()
            b.close()
        return flag

    assert run(main, backend=backend) == [b"!"]


def test_suspension_completes_at_most_once(backend):
    log = []

    async def main():
        saved = []

        def setup(susp):
            saved.append(susp)
            susp.on_wake(lambda: log.append("cleanup"))
            assert susp.complete("first") is True
            assert susp.complete("second") is False
            assert susp.fail(ValueError("late")) is False

        value = await suspend(setup, "twice")
        assert saved[0].done
        return value

    assert run(main, backend=backend) == "first"
    assert log == ["cleanup"]


def test_suspension_watch_with_a_value_and_cleanup_of_the_losers(backend):
    async def main():
        a, b = socket.socketpair()
        try:

            def setup(susp):
                now = time.monotonic()
                susp.watch_deadline(now + 10.0, value="slow")  # a timer that loses...
                susp.watch_deadline(now, value="fast")  # ...to this one
                susp.watch_fd(a.fileno(), READABLE)  # and an fd that never turns readable

            assert await suspend(setup, "race") == "fast"
            st = stats()
            assert (st.events, st.timers, st.fds) == (0, 0, 0)  # the losers were taken back on wake
        finally:
            a.close()
            b.close()

    run(main, backend=backend)


def test_suspension_setup_error_is_raised_in_the_fiber(backend):
    async def main():
        def setup(susp):
            raise ValueError("setup broke")

        with pytest.raises(ValueError, match="setup broke"):
            await suspend(setup)
        return "ok"

    assert run(main, backend=backend) == "ok"


def test_another_thread_completes_a_suspension(backend):
    async def main():
        def setup(susp):
            susp.expect_thread()

            def worker():
                time.sleep(0.05)
                susp.complete_threadsafe(("from", threading.current_thread().name))

            threading.Thread(target=worker, name="helper").start()

        return await suspend(setup, "worker thread")

    assert run(main, backend=backend) == ("from", "helper")


def test_another_thread_fails_a_suspension(backend):
    async def main():
        def setup(susp):
            susp.expect_thread()
            threading.Thread(target=susp.fail_threadsafe, args=(OSError(5, "remote"),)).start()

        with pytest.raises(OSError, match="remote"):
            await suspend(setup, "worker thread")

    run(main, backend=backend)


def test_call_threadsafe_runs_in_the_loop_thread(backend):
    async def main():
        sched = current()._sched
        seen = []

        def setup(susp):
            susp.expect_thread()

            def in_loop():
                seen.append(threading.current_thread())
                susp.complete()

            threading.Thread(target=sched.call_threadsafe, args=(in_loop,)).start()

        await suspend(setup)
        return seen == [threading.current_thread()]

    assert run(main, backend=backend) is True


def test_scheduler_object_can_be_used_directly(backend):
    async def main():
        return "direct"

    with Scheduler(backend) as sched:
        assert sched.run(main) == "direct"
        assert_clean(sched)


def test_hundred_thousand_fibers_spawned_and_joined(backend):
    n = 100_000

    async def child(i):
        await sleep(0)
        return i

    async def main():
        fibers = [spawn(child, i) for i in range(n)]
        total = 0
        for f in fibers:
            total += await f.join()
        return total, stats().fibers

    start = time.monotonic()
    assert run(main, backend=backend) == (n * (n - 1) // 2, 1)
    assert time.monotonic() - start < 60  # a safety net, not a benchmark


def test_ctrl_c_while_the_loop_blocks_stops_run_and_unwinds_the_fibers(backend):
    import os
    import signal

    log = []
    parked = threading.Event()
    gave_up = []

    async def sleeper(name):
        try:
            if name == "child":
                parked.set()  # main waits already: both fibers are inside their try blocks
            await sleep(10)
        finally:
            log.append(f"{name} unwound")

    async def main():
        spawn(sleeper, "child")
        await sleeper("main")

    # Ctrl-C raises KeyboardInterrupt only under Python's default handler; a
    # process started in the background by a shell inherits SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    # os.kill on Windows terminates the process; Ctrl-C there only sets the
    # flag Python's handler runs from, which is what interrupt_main does.
    interrupt = (_thread.interrupt_main, ()) if sys.platform == "win32" else (os.kill, (os.getpid(), signal.SIGINT))

    def interrupt_once_parked():
        # Not a fixed 50 ms after the start: on a loaded machine, making the
        # scheduler and reaching the waits can take longer than that.
        parked.wait()
        if not gave_up:
            time.sleep(0.05)  # the loop blocks in its poll by then
            interrupt[0](*interrupt[1])

    interrupter = threading.Thread(target=interrupt_once_parked)
    interrupter.start()
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            run(main, backend=backend)
    finally:
        gave_up.append(True)
        parked.set()
        interrupter.join()  # the kill is sent, or never will be, before the handler goes back
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - start < 5
    assert sorted(log) == ["child unwound", "main unwound"]


def test_a_burst_of_ready_fibers_does_not_starve_io(backend):
    """Thousands of fibers ready at once: the notifier is still polled every few dozen steps."""

    async def main():
        a, b = socket.socketpair()
        try:
            ran = [0]

            async def busy():
                ran[0] += 1

            async def reader():
                await wait_readable(a)
                return ran[0]

            r = spawn(reader)
            await sleep(0)  # the reader is parked on the fd now
            b.send(b"x")
            for _ in range(10000):
                spawn(busy)
            seen = await r.join()
            return seen
        finally:
            a.close()
            b.close()

    assert run(main, backend=backend) <= 200  # not after all 10,000


_OUT_OF_FDS_CHILD = """
import os, sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, os.path.join(sys.argv[1], "tests"))
from exhaust_fds import exhaust_fds, give_back
import poorio
assert "logging" not in sys.modules  # the report below must not need to import it

async def doomed():
    raise LookupError("reported while out of fds")

async def main():
    hogs = exhaust_fds(64)                    # not one fd left
    poorio.spawn(doomed)                      # fails, unjoined: run() reports it
    await poorio.sleep(0)
    await poorio.sleep(0)
    give_back(hogs)
    return 42

print(poorio.run(main))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE is POSIX")
def test_an_error_report_needs_no_fd(backend):
    """Out of fds, a failed fiber is still reported, and run() still returns main's result."""
    import os
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, POORIO_BACKEND=backend)
    proc = subprocess.run(
        [sys.executable, "-c", _OUT_OF_FDS_CHILD, root], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["42"]
    assert "reported while out of fds" in proc.stderr and "LookupError" in proc.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE is POSIX")
def test_the_default_capacity_is_the_fd_limit_and_holds_more_than_1024_waits(backend):
    """1,100 fibers wait on 1,100 fds at once: the default pool used to hold 1,024 and fail the rest."""
    import resource
    import socket

    from poorio.platform import default_capacity

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * 1100 + 64
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"RLIMIT_NOFILE's hard limit ({hard}) is below the {need} fds this needs")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    pairs = []
    try:
        pairs = [socket.socketpair() for _ in range(1100)]

        async def waiter(sock):
            await wait_readable(sock)
            return sock.recv(1)

        async def main():
            assert stats().capacity == default_capacity() == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            async with poorio.Group() as g:
                fibers = [g.spawn(waiter, a) for a, _ in pairs]
                await sleep(0)
                assert stats().fds == len(pairs)  # every one of them watched at once
                for _, b in pairs:
                    b.send(b"!")
            return [f.result() for f in fibers]

        assert poorio_run(main, backend=backend) == [b"!"] * len(pairs)
    finally:
        for a, b in pairs:
            a.close()
            b.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_room_counts_free_slots_and_wait_for_room_parks_until_one_frees(backend):
    import socket

    from poorio._core.traps import current_scheduler

    pairs = [socket.socketpair() for _ in range(2)]
    log = []

    async def waiter(sock):
        # The raw fd number: registered only while waited on.  (A wait on the
        # socket object would keep its registration for the next wait, and a
        # kept registration counts as taken until the socket is closed.)
        await wait_readable(sock.fileno())

    async def wants_room():
        await current_scheduler().wait_for_room(1)
        log.append(("room", current_scheduler().room()))

    async def main():
        sched = current_scheduler()
        assert sched.room() == poorio.room() == 2
        with pytest.raises(ValueError, match="count"):
            await poorio.wait_for_room(0)
        with pytest.raises(ValueError, match="count"):
            await sched.wait_for_room(3)  # more than the pool can ever hold
        async with poorio.Group() as g:
            for a, _ in pairs:
                g.spawn(waiter, a)
            await sleep(0)
            assert sched.room() == 0
            with move_on_after(0.05) as scope:  # cancelled while waiting: leaves nothing behind
                await sched.wait_for_room()
            assert scope.cancelled_caught
            g.spawn(wants_room)
            for _ in range(3):
                await sleep(0)
            assert log == []  # still full
            pairs[0][1].send(b"x")  # its waiter wakes, and its registration goes
            with poorio.fail_after(10):
                while not log:
                    await sleep(0.005)
            assert log == [("room", 1)]
            # Room for one is not room for two: that waiter must sleep, not spin.
            g.spawn(current_scheduler().wait_for_room, 2)
            before = stats().switches
            await sleep(0.05)
            assert stats().switches - before < 20
            pairs[1][1].send(b"x")

    try:
        run(main, backend=backend, capacity=2)
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_bad_arguments_to_the_traps_are_clear_errors_and_leave_the_scheduler_intact(backend):
    import math
    import socket

    async def main():
        cases = [
            (lambda: sleep("1"), TypeError, "sleep"),
            (lambda: sleep(None), TypeError, "sleep"),
            (lambda: sleep(math.nan), ValueError, "sleep"),
            (lambda: sleep(-0.5), ValueError, "sleep"),
            (lambda: sleep_until(math.nan), ValueError, "deadline"),
            (lambda: sleep_until("1"), TypeError, "deadline"),
            (lambda: wait_readable("x"), ValueError, "wait_readable"),
            (lambda: wait_readable(None), ValueError, "wait_readable"),
            (lambda: wait_readable(-1), ValueError, "wait_readable"),
            (lambda: wait_readable(2**32 + 3), ValueError, "wait_readable"),
            (lambda: poorio.wait_writable(2**40), ValueError, "wait_writable"),
        ]
        for call, error, words in cases:
            with pytest.raises(error, match=words):
                await call()
        assert stats().fds == 0 and stats().timers == 0
        a, b = socket.socketpair()  # and the scheduler still works
        with a, b:
            b.send(b"ok")
            await wait_readable(a)
            return a.recv(2)

    assert run(main, backend=backend) == b"ok"


def test_a_pool_refuses_an_fd_past_a_c_int_instead_of_watching_a_truncated_one():
    import socket

    from poorio.platform import READABLE, backends, new_pool

    a, b = socket.socketpair()
    with a, b:
        for name in backends():
            with new_pool(4, name) as pool:
                # 2**32 + fd would have been watched as fd (epoll_ctl takes an int)
                with pytest.raises(ValueError, match="invalid file descriptor"):
                    pool.add(2**32 + a.fileno(), READABLE)
                assert len(pool) == 0
