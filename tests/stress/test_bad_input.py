"""The bad-input table: every public entry point, given wrong types, NaN/inf/negative times, huge sizes
or closed objects, raises a clear exception naming the argument -- and the scheduler carries on."""

from __future__ import annotations

import math
import socket

import pytest

import poorio
from poorio import net
from poorio.events import EventSet
from poorio.ops import sleep_op, sleep_until_op, timeout_op
from poorio.platform import READABLE, new_pool

pytestmark = pytest.mark.stress

NAN, INF = math.nan, math.inf


def _closed_stream():
    a, b = socket.socketpair()
    b.close()
    stream = net.SocketStream(a)
    stream.close()
    return stream


# (name, call returning an awaitable or raising at once, exception, words the message must hold)
ASYNC_CASES = [
    ("sleep str", lambda s: poorio.sleep("1"), TypeError, "sleep"),
    ("sleep nan", lambda s: poorio.sleep(NAN), ValueError, "sleep"),
    ("sleep negative", lambda s: poorio.sleep(-1), ValueError, "sleep"),
    ("sleep None", lambda s: poorio.sleep(None), TypeError, "sleep"),
    ("sleep_until nan", lambda s: poorio.sleep_until(NAN), ValueError, "deadline"),
    ("sleep_until str", lambda s: poorio.sleep_until("1"), TypeError, "deadline"),
    ("wait_readable str", lambda s: poorio.wait_readable("x"), ValueError, "wait_readable"),
    ("wait_readable negative", lambda s: poorio.wait_readable(-3), ValueError, "wait_readable"),
    ("wait_readable huge", lambda s: poorio.wait_readable(2**32 + 3), ValueError, "wait_readable"),
    ("wait_writable None", lambda s: poorio.wait_writable(None), ValueError, "wait_writable"),
    ("wait_for_room 0", lambda s: poorio.wait_for_room(0), ValueError, "count"),
    ("read_some 0", lambda s: s.read_some(0), ValueError, "max_bytes"),
    ("read_some str", lambda s: s.read_some("9"), TypeError, "max_bytes"),
    ("read_some float", lambda s: s.read_some(1.5), TypeError, "max_bytes"),
    ("read_exactly negative", lambda s: s.read_exactly(-1), ValueError, "n must be"),
    ("read_exactly float", lambda s: s.read_exactly(1.0), TypeError, "n must be"),
    ("read_line negative", lambda s: s.read_line(-1), ValueError, "max_size"),
    ("read_line str", lambda s: s.read_line("10"), TypeError, "max_size"),
    ("read_until str delimiter", lambda s: s.read_until("\n", 10), TypeError, "delimiter"),
    ("read_until empty delimiter", lambda s: s.read_until(b"", 10), ValueError, "delimiter"),
    ("read_into bytes", lambda s: s.read_into(b"ro"), TypeError, "buffer"),
    ("read_into empty", lambda s: s.read_into(bytearray()), ValueError, "buffer"),
    ("read_some closed", lambda s: _closed_stream().read_some(), poorio.ClosedResourceError, "closed"),
    ("write_all closed", lambda s: _closed_stream().write_all(b"x"), poorio.ClosedResourceError, "closed"),
    ("connect_tcp port 70000", lambda s: poorio.connect_tcp("127.0.0.1", 70000), ValueError, "port"),
    ("connect_tcp port float", lambda s: poorio.connect_tcp("127.0.0.1", 1.5), TypeError, "port"),
    ("listen_tcp port negative", lambda s: poorio.listen_tcp("127.0.0.1", -1), ValueError, "port"),
    ("open_udp port str list", lambda s: poorio.open_udp("127.0.0.1", [1]), TypeError, "port"),
    ("open_process []", lambda s: poorio.open_process([]), ValueError, "args"),
    ("open_process int", lambda s: poorio.open_process(3), TypeError, "args"),
    ("run_process []", lambda s: poorio.run_process([]), ValueError, "args"),
]

SYNC_CASES = [
    ("move_on_after nan", lambda: poorio.move_on_after(NAN), ValueError, "seconds"),
    ("move_on_after str", lambda: poorio.move_on_after("1"), TypeError, "seconds"),
    ("fail_after nan", lambda: poorio.fail_after(NAN), ValueError, "seconds"),
    ("fail_after None", lambda: poorio.fail_after(None), TypeError, "seconds"),
    ("move_on_at str", lambda: poorio.move_on_at("1"), TypeError, "deadline"),
    ("move_on_at nan", lambda: poorio.move_on_at(NAN), ValueError, "deadline"),
    ("fail_at nan", lambda: poorio.fail_at(NAN), ValueError, "deadline"),
    ("CancelScope nan", lambda: poorio.CancelScope(deadline=NAN), ValueError, "deadline"),
    ("sleep_op nan", lambda: sleep_op(NAN), ValueError, "sleep_op"),
    ("timeout_op negative", lambda: timeout_op(-1), ValueError, "timeout_op"),
    ("timeout_op str", lambda: timeout_op("1"), TypeError, "timeout_op"),
    ("sleep_until_op nan", lambda: sleep_until_op(NAN), ValueError, "deadline"),
    ("sleep_until_op str", lambda: sleep_until_op("1"), TypeError, "deadline"),
    ("pool capacity huge", lambda: new_pool(2**40), ValueError, "capacity"),
    ("pool capacity zero", lambda: new_pool(0), ValueError, "capacity"),
    ("pool capacity float", lambda: new_pool(2.0), ValueError, "capacity"),
    ("EventSet capacity huge", lambda: EventSet(capacity=2**40), ValueError, "capacity"),
    ("EventSet timer nan", lambda: _with_set(lambda es: es.add("t", NAN)), ValueError, "interval"),
    ("EventSet timer inf", lambda: _with_set(lambda es: es.add("t", INF)), ValueError, "interval"),
    ("EventSet timeout negative", lambda: _with_set(lambda es: es.add("v", None, None, -1)), ValueError, "timeout"),
    ("EventSet bad kind", lambda: _with_set(lambda es: es.add("x")), ValueError, "kind"),
    ("EventSet fd huge", lambda: _with_set(lambda es: es.add("r", 2**32 + 3)), ValueError, "source"),
    ("pool add huge fd", lambda: _with_pool(lambda p: p.add(2**32 + 3, READABLE)), ValueError, "descriptor"),
    ("pool cycle nan", lambda: _with_pool(lambda p: p.cycle(NAN)), ValueError, "NaN"),
    ("run capacity huge", lambda: poorio.run(_noop, capacity=2**40), ValueError, "capacity"),
    ("spawn outside", lambda: poorio.spawn(_noop), RuntimeError, "scheduler"),
]


async def _noop():
    pass


def _with_set(fn):
    with EventSet(capacity=4) as es:
        return fn(es)


def _with_pool(fn):
    with new_pool(4) as pool:
        return fn(pool)


@pytest.mark.parametrize("name, call, error, words", SYNC_CASES, ids=[c[0] for c in SYNC_CASES])
def test_sync_entry_points_refuse_bad_input_clearly(name, call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_async_entry_points_refuse_bad_input_clearly_and_the_scheduler_carries_on():
    async def main():
        a, b = socket.socketpair()
        async with net.SocketStream(a) as stream, net.SocketStream(b) as peer:
            failures = []
            for name, call, error, words in ASYNC_CASES:
                try:
                    await call(stream)
                except error as caught:
                    if words.lower() not in str(caught).lower():
                        failures.append(f"{name}: {caught!r} does not mention {words!r}")
                except BaseException as caught:  # noqa: BLE001 - the table reports every surprise
                    failures.append(f"{name}: {caught!r}, expected {error.__name__}")
                else:
                    failures.append(f"{name}: no error")
                # The scheduler is unharmed: nothing left registered, and a round trip still works.
                stats = poorio.stats()
                if stats.timers or stats.fds > 2 or stats.fibers != 1:
                    failures.append(f"{name}: left {stats}")
                await peer.write_all(b"?")
                if await stream.read_exactly(1) != b"?":
                    failures.append(f"{name}: the stream no longer works")
            return failures

    assert poorio.run(main) == []
