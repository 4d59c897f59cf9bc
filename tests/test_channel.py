"""Channels and queues: rendezvous and back-pressure interleavings, close, cancellation, no lost or duplicated messages.

Interleavings are recorded in a list and compared exactly.  A hypothesis
test runs random producers, consumers (some choosing between two queues)
and cancellations, and checks that every value whose put completed is got
exactly once and nothing else is.  Channels involve no IO, so these run on
the default backend (``POORIO_BACKEND`` picks another).
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fiber_helpers import run  # noqa: F401 (fixtures)
from poorio.channel import Channel, Queue
from poorio.errors import Cancelled, ChannelClosedError, EndOfChannel
from poorio.ops import choice, timeout_op
from poorio import checkpoint, sleep, spawn, stats


async def _producer(log, ch, name, values):
    for v in values:
        log.append(f"{name} put {v}")
        await ch.put(v)
        log.append(f"{name} sent {v}")


async def _consumer(log, ch, name, n):
    for _ in range(n):
        v = await ch.get()
        log.append(f"{name} got {v}")


def test_channel_rendezvous_exact_interleaving():
    log = []

    async def main():
        ch = Channel()
        p = spawn(_producer, log, ch, "p", [1, 2])
        c = spawn(_consumer, log, ch, "c", 2)
        await p.join()
        await c.join()

    run(main)
    assert log == [
        "p put 1",  # no getter yet: p parks
        "c got 1",  # c takes from the parked putter without yielding, then parks for the next
        "p sent 1",  # p resumes
        "p put 2",
        "p sent 2",  # c is parked: the value is handed over without yielding
        "c got 2",
    ]


def test_getter_first_put_hands_over_without_yielding():
    log = []

    async def main():
        ch = Channel()
        c = spawn(_consumer, log, ch, "c", 1)
        await checkpoint()  # c parks
        switches = stats().switches
        await ch.put("x")
        log.append("main put returned")
        log.append(stats().switches == switches)
        await c.join()

    run(main)
    assert log == ["main put returned", True, "c got x"]


def test_queue_back_pressure_exact_interleaving():
    log = []

    async def main():
        q = Queue(2)
        p = spawn(_producer, log, q, "p", [1, 2, 3, 4])
        await checkpoint()  # p buffers 1, 2 and parks on 3
        log.append(f"len {len(q)}")
        log.append(f"main got {await q.get()}")  # frees a slot: p's 3 moves into it
        log.append(f"len {len(q)}")
        c = spawn(_consumer, log, q, "c", 3)
        await p.join()
        await c.join()

    run(main)
    assert log == [
        "p put 1", "p sent 1", "p put 2", "p sent 2", "p put 3",
        "len 2",
        "main got 1",
        "len 2",
        "p sent 3", "p put 4",  # p resumes; the buffer is full again, so 4 parks
        "c got 2", "c got 3", "c got 4",  # c drains; its first get let 4 in
        "p sent 4",
    ]  # fmt: skip


def test_close_wakes_getters_and_putters_and_keeps_the_buffer():
    log = []

    async def getter(ch):
        try:
            await ch.get()
        except EndOfChannel:
            log.append("getter: end")

    async def putter(ch, v):
        try:
            await ch.put(v)
        except ChannelClosedError:
            log.append(f"putter {v}: closed")

    async def main():
        ch = Channel()
        g = spawn(getter, ch)
        await checkpoint()
        ch.close()
        ch.close()  # twice is fine
        await g.join()
        q = Queue(1)
        await q.put("kept")
        p = spawn(putter, q, "late")
        await checkpoint()
        q.close()
        await p.join()
        log.append(await q.get())
        with pytest.raises(EndOfChannel):
            await q.get()
        with pytest.raises(ChannelClosedError):
            await q.put("more")
        with pytest.raises(ChannelClosedError):
            await ch.put_op(1).perform()
        log.append((q.closed, ch.waiting(), q.waiting()))

    run(main)
    assert log == ["getter: end", "putter late: closed", "kept", (True, (0, 0), (0, 0))]


def test_async_for_until_closed():
    async def main():
        q = Queue(3)

        async def produce():
            for i in range(5):
                await q.put(i)
            q.close()

        spawn(produce)
        return [v async for v in q]

    assert run(main) == [0, 1, 2, 3, 4]


def test_put_to_a_cancelled_getter_is_not_lost():
    log = []

    async def main():
        ch = Channel()
        first = spawn(_consumer, log, ch, "first", 1)
        second = spawn(_consumer, log, ch, "second", 1)
        await checkpoint()  # both park
        first.cancel()
        await ch.put("v")  # the cancelled getter has left: the value goes to the next
        with pytest.raises(Cancelled):
            await first.join()
        await second.join()
        log.append(ch.waiting())

    run(main)
    assert log == ["second got v", (0, 0)]


def test_value_handed_over_before_cancel_is_still_delivered():
    """A getter completed by a put and then cancelled before it runs still gets the value."""
    log = []

    async def getter(ch):
        try:
            log.append(await ch.get())
            await checkpoint()
        except Cancelled:
            log.append("cancelled at the next checkpoint")
            raise

    async def main():
        ch = Channel()
        g = spawn(getter, ch)
        await checkpoint()
        await ch.put("v")  # completes g's wait...
        g.cancel()  # ...before g runs again
        with pytest.raises(Cancelled):
            await g.join()

    run(main)
    assert log == ["v", "cancelled at the next checkpoint"]


def test_cancelled_putter_leaves_and_its_value_is_not_delivered():
    async def main():
        q = Queue(1)
        await q.put("in buffer")
        p = spawn(q.put, "withdrawn")
        await checkpoint()
        assert q.waiting() == (0, 1)
        p.cancel()
        with pytest.raises(Cancelled):
            await p.join()
        got = [await q.get()]
        got.append(await choice(q.get_op(), timeout_op(0.01).wrap(lambda _: "nothing")).perform())
        return got, q.waiting()

    assert run(main) == (["in buffer", "nothing"], (0, 0))


def test_queue_rejects_bad_sizes():
    with pytest.raises(ValueError):
        Queue(-1)
    with pytest.raises(TypeError):
        Queue(1.5)
    assert Queue(0).maxsize == Channel().maxsize == 0


def test_ping_pong_100000():
    n = 100_000

    async def main():
        ping, pong = Channel(), Channel()

        async def echo():
            async for v in ping:
                await pong.put(v + 1)

        spawn(echo)
        total = 0
        start = time.perf_counter()
        for i in range(n):
            await ping.put(i)
            total += await pong.get() - i
        ping.close()
        return total, time.perf_counter() - start

    total, elapsed = run(main)
    assert total == n
    assert elapsed < 20  # a generous safety net, not a benchmark


# -- no lost or duplicated messages, whatever the interleaving ----------------------

_cancel_step = st.one_of(st.none(), st.integers(0, 40))


@settings(max_examples=80)
@given(
    maxsize=st.sampled_from([0, 1, 3]),
    producers=st.lists(
        st.tuples(st.integers(1, 8), st.booleans(), st.booleans(), _cancel_step),  # n, choose, pause, cancel
        min_size=1, max_size=4,
    ),
    consumers=st.lists(
        st.tuples(st.booleans(), st.booleans(), _cancel_step),  # choose, pause, cancel
        min_size=1, max_size=4,
    ),
)  # fmt: skip
def test_no_lost_or_duplicated_messages(maxsize, producers, consumers):
    sent, got = [], []

    async def producer(queues, pid, n, choose, pause):
        for seq in range(n):
            msg = (pid, seq)
            if choose:
                await choice(*(q.put_op(msg) for q in queues)).perform()
            else:
                await queues[pid % 2].put(msg)
            sent.append(msg)  # no suspension point between the put and this
            if pause:
                await checkpoint()

    async def consumer(queues, cid, choose, pause):
        mine = queues[cid % 2]
        while True:
            if choose:
                msg = await choice(*(q.get_op() for q in queues)).perform()
            else:
                msg = await mine.get()
            got.append((cid, msg))
            if pause:
                await checkpoint()

    async def main():
        queues = [Channel(), Channel()] if maxsize == 0 else [Queue(maxsize), Queue(maxsize)]
        fibers = []
        for pid, (n, choose, pause, cancel_at) in enumerate(producers):
            fibers.append((spawn(producer, queues, pid, n, choose, pause), cancel_at))
        for cid, (choose, pause, cancel_at) in enumerate(consumers):
            fibers.append((spawn(consumer, queues, cid, choose, pause), cancel_at))
        for step in range(42):
            for fiber, cancel_at in fibers:
                if cancel_at == step:
                    fiber.cancel()
            await checkpoint()
        for fiber, _ in fibers:
            fiber.cancel()
        for fiber, _ in fibers:
            try:
                await fiber.join()
            except Cancelled:
                pass
        left = [q.waiting() for q in queues]
        drained = []
        for q in queues:
            q.close()
            async for msg in q:
                drained.append(msg)
        return left, drained

    left, drained = run(main)
    assert left == [(0, 0), (0, 0)]  # every parked fiber left its queue when cancelled
    received = [msg for _, msg in got] + drained
    assert len(received) == len(set(received)), "a message was got twice"
    assert sorted(received) == sorted(sent), "a put message was lost, or an unsent one got"
    # FIFO: one consumer sees one plain producer's messages in order
    for cid in range(len(consumers)):
        for pid, (_, choose, _, _) in enumerate(producers):
            if not choose:
                seqs = [msg[1] for c, msg in got if c == cid and msg[0] == pid]
                assert seqs == sorted(seqs)


def test_sleeping_consumer_then_burst():
    """A burst into a small queue while the consumer sleeps: back-pressure, in order, nothing lost."""

    async def main():
        q = Queue(2)
        out = []

        async def consume():
            await sleep(0.01)
            async for v in q:
                out.append(v)

        c = spawn(consume)
        for i in range(20):
            await q.put(i)
        q.close()
        await c.join()
        return out

    assert run(main) == list(range(20))
