"""Other threads poking an event set: wakeup, once, trigger and stop interrupt a blocking iteration."""

from __future__ import annotations

import math
import threading
import time

from events_support import backend, drain, es  # noqa: F401 (fixtures)


def later(delay: float, func, *args) -> threading.Timer:
    timer = threading.Timer(delay, func, args)
    timer.start()
    return timer


def test_wakeup_ends_a_bounded_wait_early(es):
    vid = es.add("V")  # something to wait for, which never comes
    poker = later(0.05, es.wakeup)
    start = time.monotonic()
    try:
        assert drain(es, 10) == []
    finally:
        poker.join()
    assert time.monotonic() - start < 5  # safety net only: the wait was 10 s
    es.delete(vid)


def test_once_from_another_thread_wakes_a_blocking_loop(es):
    vid = es.add("V")
    poker = later(0.05, es.once, "from a thread")
    try:
        got = []
        for ev in es(True):
            got.append((ev.kind, ev.reason, ev.context))
            es.stop()
    finally:
        poker.join()
    assert got == [("v", "triggered", "from a thread")]
    es.delete(vid)


def test_trigger_from_another_thread(es):
    vid = es.add("V", None, "ctx")
    poker = later(0.05, es.trigger, vid)
    try:
        assert drain(es, math.inf) == [(vid, "triggered", 0)]
    finally:
        poker.join()
    es.delete(vid)


def test_stop_from_another_thread(es):
    vid = es.add("V")
    poker = later(0.05, es.stop)
    try:
        assert drain(es, True) == []
    finally:
        poker.join()
    es.delete(vid)


def test_many_threads_many_onces_each_delivered_exactly_once(es):
    threads, per_thread = 4, 500
    vid = es.add("V")  # keeps the set non-empty between bursts
    go = threading.Event()

    def producer(tag):
        go.wait()
        for n in range(per_thread):
            es.once((tag, n))

    workers = [threading.Thread(target=producer, args=(tag,)) for tag in range(threads)]
    for worker in workers:
        worker.start()
    go.set()
    seen = []
    try:
        while len(seen) < threads * per_thread:
            seen.extend(ev.context for ev in es(math.inf) if ev.id != vid)
    finally:
        for worker in workers:
            worker.join()
    assert sorted(seen) == [(tag, n) for tag in range(threads) for n in range(per_thread)]
    assert drain(es) == []
    es.delete(vid)


def test_loop_in_a_worker_thread_woken_from_main(backend):
    from poorio.events import EventSet

    results = []
    with EventSet(backend=backend) as es:
        vid = es.add("V")
        ready = threading.Event()

        def loop():
            ready.set()
            results.extend(ev.context for ev in es(math.inf))

        worker = threading.Thread(target=loop)
        worker.start()
        ready.wait()
        time.sleep(0.02)  # let it block (if it has not yet, once() is seen before it waits)
        es.once("hello")
        worker.join(10)
        assert not worker.is_alive()
        es.delete(vid)
    assert results == ["hello"]
