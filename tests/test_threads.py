"""The worker pool and run_in_thread: real threads, cancellation both ways, back-pressure, idle exit, shutdown, DNS."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from fiber_helpers import backend, run  # noqa: F401 (fixtures)
from poorio import CancelScope, Group, fail_after, move_on_after, net, sleep, spawn
from poorio.errors import Cancelled
from poorio.threads import WorkerPool, default_pool, run_in_thread


def _wait_until(predicate, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def test_result_and_exception_pass_through(backend):
    async def main():
        assert await run_in_thread(sum, [1, 2, 3]) == 6
        assert await run_in_thread(threading.get_ident) != threading.get_ident()
        with pytest.raises(ValueError, match="invalid literal"):
            await run_in_thread(int, "x")
        with pytest.raises(FileNotFoundError) as info:
            await run_in_thread(open, "/nonexistent/poorio")
        assert info.value.errno == 2  # unmodified OSError

    run(main, backend=backend)


def test_other_fibers_run_while_a_thread_blocks(backend):
    ticks = []

    async def ticker():
        for _ in range(5):
            ticks.append(time.monotonic())
            await sleep(0.01)

    async def main():
        fiber = spawn(ticker)
        await run_in_thread(time.sleep, 0.2)
        await fiber.join()

    run(main, backend=backend)
    assert len(ticks) == 5


def test_cancellable_call_stops_waiting_at_once(backend):
    release = threading.Event()
    started = threading.Event()
    pool = WorkerPool(max_threads=2)

    def work():
        started.set()
        release.wait(10)

    async def main():
        # The deadline is set once the call runs in its thread: a call still
        # queued when its waiter gives up is dropped instead, and on a loaded
        # machine a new worker thread can take more than 50 ms to start.
        with pytest.raises(TimeoutError):
            with fail_after(30) as scope:

                async def expire_once_started():
                    await run_in_thread(started.wait, 30, cancellable=True)
                    scope.deadline = time.monotonic() + 0.05

                spawn(expire_once_started)
                await run_in_thread(work, cancellable=True, pool=pool)
        assert time.monotonic() - scope.deadline < 2  # did not wait for the thread
        assert pool.statistics().running == 1  # the call goes on, unseen

    run(main, backend=backend)
    release.set()
    _wait_until(lambda: pool.statistics().running == 0)


def test_uncancellable_call_is_waited_for(backend):
    done = []

    def work():
        time.sleep(0.1)
        done.append(True)
        return "finished"

    async def main():
        with move_on_after(0.01) as scope:
            result = await run_in_thread(work)
            assert result == "finished"  # the wait completed; Cancelled comes at the next checkpoint
            await sleep(0)
        assert scope.cancel_called
        assert done == [True]

    run(main, backend=backend)


def test_already_cancelled_fiber_does_not_start_the_call():
    called = []

    async def main():
        with CancelScope() as scope:
            scope.cancel()
            await run_in_thread(called.append, 1)
            pytest.fail("the call should have raised Cancelled")

    run(main)
    assert called == []


def test_bounded_pool_applies_back_pressure_and_threads_exit_when_idle():
    pool = WorkerPool(max_threads=2, idle_timeout=0.2)
    active = []
    peak = []
    lock = threading.Lock()

    def work():
        with lock:
            active.append(1)
            peak.append(len(active))
        time.sleep(0.05)
        with lock:
            active.pop()

    async def one():
        await run_in_thread(work, pool=pool)

    async def main():
        async with Group() as group:
            for _ in range(6):
                group.spawn(one)
        assert max(peak) == 2 and len(peak) == 6
        assert pool.statistics().threads <= 2

    run(main)
    _wait_until(lambda: pool.statistics().threads == 0)  # idle threads retire


def test_queued_call_is_dropped_when_its_fiber_gives_up():
    pool = WorkerPool(max_threads=1)
    release = threading.Event()
    called = []

    async def block():
        await run_in_thread(release.wait, 10, pool=pool)

    async def main():
        blocker = spawn(block)
        await sleep(0.02)
        with move_on_after(0.02):
            await run_in_thread(called.append, 1, cancellable=True, pool=pool)
        assert pool.statistics().queued == 0
        release.set()
        await blocker.join()

    run(main)
    assert called == []


def test_run_ending_with_calls_in_flight_is_clean(backend):
    """An abandoned call finishes after its scheduler closed; nothing calls into it, nothing is logged."""
    pool = WorkerPool(max_threads=2)
    release = threading.Event()
    errors = []
    handler = logging.Handler()
    handler.emit = errors.append
    logging.getLogger("poorio").addHandler(handler)
    old_hook = threading.excepthook
    threading.excepthook = errors.append
    try:

        async def block():
            await run_in_thread(release.wait, 10, cancellable=True, pool=pool)

        async def main():
            spawn(block)
            await sleep(0.02)  # main returns; run() cancels the waiting fiber

        run(main, backend=backend)
        release.set()
        _wait_until(lambda: pool.statistics().running == 0)
    finally:
        threading.excepthook = old_hook
        logging.getLogger("poorio").removeHandler(handler)
    assert errors == []


def test_cancelled_from_another_fiber_raises_cancelled(backend):
    release = threading.Event()

    async def waiter():
        await run_in_thread(release.wait, 10, cancellable=True)

    async def main():
        fiber = spawn(waiter)
        await sleep(0.02)
        fiber.cancel()
        with pytest.raises(Cancelled):
            await fiber.join()
        release.set()

    run(main, backend=backend)


def test_default_pool_is_shared():
    assert default_pool() is default_pool()
    assert repr(default_pool()).startswith("<WorkerPool")


def test_bad_pool_size():
    with pytest.raises(ValueError):
        WorkerPool(max_threads=0)


def test_getaddrinfo_localhost_offline(backend):
    async def main():
        infos = await net.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
        assert any(info[4][0] in ("127.0.0.1", "::1") for info in infos)
        same = await run_in_thread(socket.getaddrinfo, "localhost", 80, 0, socket.SOCK_STREAM, cancellable=True)
        assert {i[4] for i in same} == {i[4] for i in infos}

    run(main, backend=backend)


def test_getaddrinfo_is_cancellable(backend, monkeypatch):
    """A lookup that hangs: the caller still stops waiting at once."""
    release = threading.Event()
    real = socket.getaddrinfo
    in_flight = threading.Condition()
    hung = []  # the lookups still inside `slow`

    def slow(host, port, family=0, type=0, proto=0, flags=0):
        if host == "slow.invalid":
            if flags & socket.AI_NUMERICHOST:
                raise socket.gaierror(socket.EAI_NONAME, "not a numeric host")
            with in_flight:
                hung.append(host)
            try:
                release.wait(10)
                return real("localhost", port, family, type, proto, flags)
            finally:
                with in_flight:
                    hung.remove(host)
                    in_flight.notify_all()
        return real("localhost", port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", slow)  # the resolver, not the kernel

    async def main():
        start = time.monotonic()
        with move_on_after(0.05) as scope:
            await net.getaddrinfo("slow.invalid", 80)
        assert scope.cancel_called and time.monotonic() - start < 2
        with move_on_after(0.05) as scope:
            await run_in_thread(socket.getaddrinfo, "slow.invalid", 80, cancellable=True)
        assert scope.cancel_called

    try:
        run(main, backend=backend)
    finally:
        release.set()
        # The abandoned lookups finish now; the fds the resolver opens
        # (/etc/hosts...) must be closed again before the fd-leak check.
        with in_flight:
            assert in_flight.wait_for(lambda: not hung, timeout=10)
