"""Faults in one process, against poorio directly: exact byte accounting under random cancellation,
closing while fibers wait, fd numbers reused at once, signals during IO, EMFILE with recovery."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import sys
import threading
import time

import pytest

import poorio
from poorio import net
from poorio.errors import ClosedResourceError

from .soak import Server, proc_status

pytestmark = pytest.mark.stress

MiB = 1 << 20


def _stream_pair():
    a, b = socket.socketpair()
    return net.SocketStream(a), net.SocketStream(b)


def test_cancellation_at_random_points_loses_and_duplicates_no_byte():
    """Every write_some and read_some runs under a random deadline; what they report is exactly what moved."""
    rng = random.Random(7)
    data = rng.randbytes(8 * MiB) if hasattr(rng, "randbytes") else os.urandom(8 * MiB)

    async def main():
        left, right = _stream_pair()
        written = bytearray()
        got = hashlib.sha256()
        counts = {"write_cancels": 0, "read_cancels": 0, "read": 0}
        async with left, right:

            async def writer():
                sent = 0
                view = memoryview(data)
                while sent < len(data):
                    size = rng.randint(1, 256 * 1024)
                    with poorio.move_on_after(rng.choice((0, 0.0001, 0.001, 0.01))) as scope:
                        n = await left.write_some(view[sent : sent + size])
                        written.extend(view[sent : sent + n])
                        sent += n
                    counts["write_cancels"] += scope.cancelled_caught
                await left.send_eof()

            async def reader():
                while True:
                    with poorio.move_on_after(rng.choice((0, 0.0001, 0.001, 0.01))) as scope:
                        chunk = await right.read_some(rng.randint(1, 128 * 1024))
                        if not chunk:
                            return
                        got.update(chunk)
                        counts["read"] += len(chunk)
                    counts["read_cancels"] += scope.cancelled_caught

            async with poorio.Group() as g:
                g.spawn(writer)
                g.spawn(reader)
        return bytes(written), got.digest(), counts

    written, digest, counts = poorio.run(main)
    assert written == data
    assert counts["read"] == len(data) and digest == hashlib.sha256(data).digest()
    assert counts["write_cancels"] > 10 and counts["read_cancels"] > 10, counts


def test_closing_streams_while_fibers_wait_wakes_them_all_and_reused_fds_work_at_once():
    rounds, width = 30, 50

    async def main():
        woken = 0
        for _ in range(rounds):
            pairs = [_stream_pair() for _ in range(width)]
            outcomes = []

            async def waiter(stream):
                try:
                    await stream.read_some()
                    outcomes.append("data")
                except ClosedResourceError:
                    outcomes.append("closed")

            async with poorio.Group() as g:
                for a, _ in pairs:
                    g.spawn(waiter, a)
                await poorio.sleep(0)
                order = list(range(width))
                random.shuffle(order)
                for i in order:  # closed while waited on, in random order, now and then a yield between
                    pairs[i][0].close()
                    if random.random() < 0.3:
                        await poorio.sleep(0)
            woken += outcomes.count("closed")
            assert outcomes == ["closed"] * width
            # The numbers just freed are handed out again at once: the new streams must be watched afresh.
            fresh = [_stream_pair() for _ in range(width)]
            for _, b in pairs:
                b.close()
            async with poorio.Group() as g:
                for x, y in fresh:

                    async def ping(x=x, y=y):
                        await y.write_all(b"ping")
                        assert await x.read_exactly(4) == b"ping"

                    g.spawn(ping)
            for x, y in fresh:
                x.close()
                y.close()
            assert poorio.stats().fds == 0
        return woken

    assert poorio.run(main) == rounds * width


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs SIGUSR1")
def test_signals_at_a_high_rate_during_io_lose_nothing():
    seen = [0]
    previous = signal.signal(signal.SIGUSR1, lambda *_: seen.__setitem__(0, seen[0] + 1))
    stop = threading.Event()
    pid = os.getpid()

    def pester():
        while not stop.is_set():
            os.kill(pid, signal.SIGUSR1)
            time.sleep(0.0005)

    data = os.urandom(16 * MiB)

    async def main():
        r, w = poorio.pipe()
        async with r, w:

            async def writer():
                await w.write_all(data)
                w.close()

            digest = hashlib.sha256()
            async with poorio.Group() as g:
                g.spawn(writer)
                while True:
                    chunk = await r.read_some(rng_size())
                    if not chunk:
                        break
                    digest.update(chunk)
                    await poorio.sleep(0)  # and timers, while signals interrupt the waits
            return digest.digest()

    sizes = random.Random(3)

    def rng_size():
        return sizes.randint(1, 200_000)

    thread = threading.Thread(target=pester)
    thread.start()
    try:
        assert poorio.run(main) == hashlib.sha256(data).digest()
    finally:
        stop.set()
        thread.join()
        signal.signal(signal.SIGUSR1, previous)
    assert seen[0] > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_emfile_backs_off_without_spinning_and_recovers():
    """A server out of fds keeps what it has, does not spin, and serves again once fds free."""
    server = Server(os.environ.get("POORIO_BACKEND"), fd_limit=96)
    clients = []
    try:
        for _ in range(150):  # more than it can accept: the rest wait in the backlog
            clients.append(socket.create_connection(("127.0.0.1", server.port)))
        time.sleep(0.5)
        cpu = _cpu(server.pid)
        time.sleep(1.0)  # the server sits at EMFILE with connections queued
        spent = _cpu(server.pid) - cpu
        assert spent < 0.5, f"the server burned {spent:.2f} s of CPU in 1 s at EMFILE: it spins"
        assert proc_status(server.pid)["fds"] <= 96
        for sock in clients[:20]:  # the accepted ones still echo
            sock.settimeout(10)
            sock.sendall(b"alive")
        served = 0
        for sock in clients[:20]:
            try:
                served += sock.recv(5) == b"alive"
            except socket.timeout:
                pass
        assert served > 0
        for sock in clients:
            sock.close()
        clients.clear()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:  # recovered
            sock.sendall(b"again")
            assert sock.recv(5) == b"again"
    finally:
        for sock in clients:
            sock.close()
        report = server.stop()
    assert report["exit"] == 0 and not report["errors"], report


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
