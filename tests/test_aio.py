"""Stock asyncio programs on poorio.aio, on every backend: streams, sock_*, subprocesses, timeouts, signals."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings

import pytest

import poorio.aio
from poorio.errors import BackendUnavailableError, PoolFullError
from poorio.platform import backends
from poorio.selector import Selector, selector_classes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "demos", "asyncio_on_poorio.py")
SAFETY = 20.0  # seconds any one asyncio program may take before it is cancelled

pytestmark = pytest.mark.parametrize("backend", backends())
# asyncio's selector loop on Windows watches sockets only: no pipes, subprocesses or signal handlers.
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="asyncio's selector loop on Windows has no pipes, subprocesses or signals")


def run_on(backend: str, main, *args, **kwargs):
    """Run ``main(*args)`` with ``poorio.aio.run`` on ``backend``, cancelled after SAFETY seconds."""

    async def guarded():
        loop = asyncio.get_running_loop()
        assert isinstance(loop._selector, Selector) and loop._selector.backend == backend
        return await asyncio.wait_for(main(*args), SAFETY)

    return poorio.aio.run(guarded(), backend=backend, **kwargs)


async def echo_server(limit: int = 2**16, backlog: int = 100):
    """A stream echo server on loopback; returns (server, port)."""

    async def echo(reader, writer):
        try:
            while True:
                data = await reader.read(limit)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, backlog=backlog)
    return server, server.sockets[0].getsockname()[1]


async def close_server(server) -> None:
    server.close()
    await server.wait_closed()


def test_runs_stock_asyncio_on_poorio(backend):
    async def main():
        loop = asyncio.get_running_loop()
        assert isinstance(loop, asyncio.SelectorEventLoop)
        return loop._selector.statistics()

    stats = run_on(backend, main)
    assert stats.backend == backend
    assert stats.size >= 1  # asyncio's self-pipe, at least


def test_stream_echo(backend):
    payload = os.urandom(3 * 2**20)  # far larger than the socket buffers: exercises drain()

    async def main():
        server, port = await echo_server()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def send():
            writer.write(payload)
            await writer.drain()
            writer.write_eof()

        sender = asyncio.ensure_future(send())
        received = await reader.read(-1)
        await sender
        writer.close()
        await writer.wait_closed()
        await close_server(server)
        return received

    assert run_on(backend, main) == payload


def test_many_concurrent_connections(backend):
    count = 200

    async def client(port, i):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        line = f"client {i} {os.urandom(8).hex()}\n".encode()
        writer.write(line)
        echoed = await reader.readline()
        writer.close()
        await writer.wait_closed()
        return line, echoed

    async def main():
        server, port = await echo_server(backlog=count)  # no SYN dropped, no 1 s retry
        results = await asyncio.gather(*(client(port, i) for i in range(count)))
        peak = asyncio.get_running_loop()._selector.statistics()
        await close_server(server)
        return results, peak

    results, _ = run_on(backend, main)
    assert len(results) == count
    assert all(sent == echoed for sent, echoed in results)
    assert len({sent for sent, _ in results}) == count


@posix_only
def test_subprocess_with_pipes(backend):
    code = "import sys; data = sys.stdin.read(); sys.stdout.write(data.upper()); sys.stderr.write(str(len(data)))"
    text = "hello from poorio " * 1000

    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(text.encode())
        return proc.returncode, out, err

    returncode, out, err = run_on(backend, main)
    assert returncode == 0
    assert out.decode() == text.upper()
    assert int(err) == len(text)


@posix_only
def test_subprocess_exit_status(backend):
    async def main():
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "import sys; sys.exit(7)")
        return await proc.wait()

    assert run_on(backend, main) == 7


def test_wait_for_timeouts(backend):
    async def main():
        server, port = await echo_server()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        start = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.1)  # nothing was sent: nothing comes back
        waited = time.monotonic() - start
        writer.write(b"still alive\n")  # the timed-out read left the stream usable
        line = await asyncio.wait_for(reader.readline(), SAFETY)
        writer.close()
        await writer.wait_closed()
        await close_server(server)
        return waited, line

    waited, line = run_on(backend, main)
    assert waited >= 0.1
    assert line == b"still alive\n"


def test_sleep_does_not_spin(backend):
    """Timeouts are rounded up, so a fractional-millisecond sleep costs a couple of waits, not a busy loop."""

    pinned = {cls.BACKEND: cls for cls in selector_classes()}[backend]

    class CountingSelector(pinned):
        calls = 0

        def select(self, timeout=None):
            CountingSelector.calls += 1
            return super().select(timeout)

    async def main():
        for _ in range(20):
            await asyncio.sleep(0.0105)

    loop = asyncio.SelectorEventLoop(CountingSelector(64))
    try:
        loop.run_until_complete(asyncio.wait_for(main(), SAFETY))
    finally:
        loop.close()
    assert CountingSelector.calls <= 20 * 3


@posix_only
def test_signal_handler_wakes_a_blocked_loop(backend):
    async def main():
        loop = asyncio.get_running_loop()
        arrived = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, lambda: arrived.done() or arrived.set_result(signal.SIGUSR1))
        # From another thread, so the loop is blocked in select() with nothing
        # else to wake it: the signal alone must.
        killer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1))
        killer.start()
        try:
            return await arrived
        finally:
            killer.join()
            assert loop.remove_signal_handler(signal.SIGUSR1)

    assert run_on(backend, main) == signal.SIGUSR1


def test_server_closed_while_clients_connected(backend):
    count = 5

    async def main():
        stop = asyncio.Event()
        handlers = []

        async def hold(reader, writer):
            handlers.append(writer)
            writer.write(b"hello\n")
            await stop.wait()
            writer.close()  # the server side ends the conversation
            await writer.wait_closed()

        server = await asyncio.start_server(hold, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
        for reader, _ in clients:
            assert await reader.readline() == b"hello\n"
        server.close()
        with pytest.raises(ConnectionRefusedError) as refused:
            await asyncio.open_connection("127.0.0.1", port)
        assert refused.value.errno == errno.ECONNREFUSED
        stop.set()
        tails = [await reader.read() for reader, _ in clients]  # EOF once the handler closes
        for _, writer in clients:
            writer.close()
            await writer.wait_closed()
        await asyncio.wait_for(server.wait_closed(), SAFETY)
        return len(handlers), tails

    handled, tails = run_on(backend, main)
    assert handled == count
    assert tails == [b""] * count


def test_sock_methods(backend):
    payload = os.urandom(2**21)

    async def main():
        loop = asyncio.get_running_loop()
        with socket.socket() as listener, socket.socket() as client:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            listener.setblocking(False)
            client.setblocking(False)
            accepting = asyncio.ensure_future(loop.sock_accept(listener))
            await loop.sock_connect(client, listener.getsockname())
            conn, _addr = await accepting
            with conn:
                conn.setblocking(False)
                sending = asyncio.ensure_future(loop.sock_sendall(client, payload))
                buf = bytearray(len(payload))
                view = memoryview(buf)
                got = 0
                while got < len(payload):
                    n = await loop.sock_recv_into(conn, view[got:])
                    assert n > 0
                    got += n
                await sending
                await loop.sock_sendall(conn, b"pong")
                reply = await loop.sock_recv(client, 4)
        return bytes(buf), reply

    received, reply = run_on(backend, main)
    assert received == payload
    assert reply == b"pong"


def test_refused_connect_reports_real_errno(backend):
    """A failed connect reaches the writer through ERROR/HANGUP, as with the stdlib selectors."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connecting is refused

        async def main():
            loop = asyncio.get_running_loop()
            with socket.socket() as sock:
                sock.setblocking(False)
                with pytest.raises(ConnectionRefusedError) as refused:
                    await loop.sock_connect(sock, ("127.0.0.1", port))
                return refused.value.errno

        assert run_on(backend, main) == errno.ECONNREFUSED


@posix_only
def test_add_reader_and_writer_on_a_pipe(backend):
    async def main():
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        try:
            os.set_blocking(r, False)
            writable = loop.create_future()
            readable = loop.create_future()
            loop.add_writer(w, lambda: writable.done() or writable.set_result(True))
            assert await writable
            assert loop.remove_writer(w)
            loop.add_reader(r, lambda: readable.done() or readable.set_result(os.read(r, 100)))
            os.write(w, b"through the pipe")
            data = await readable
            assert loop.remove_reader(r)
            assert not loop.remove_reader(r)
            return data
        finally:
            os.close(r)
            os.close(w)

    assert run_on(backend, main) == b"through the pipe"


@posix_only
def test_full_loop_raises_pool_full(backend):
    """A loop at capacity refuses a registration loudly, both directly and for an accepted connection."""

    async def main():
        loop = asyncio.get_running_loop()
        reported = []
        loop.set_exception_handler(lambda _loop, context: reported.append(context.get("exception")))
        accepted = []
        # capacity 3: asyncio's self-pipe, the listener and the client leave no room for the accepted socket.
        server = await asyncio.start_server(lambda r, w: accepted.append(w), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while not reported:
            await asyncio.sleep(0.01)
        r, w = os.pipe()
        try:
            with pytest.raises(PoolFullError):
                loop.add_reader(r, lambda: None)
        finally:
            os.close(r)
            os.close(w)
        for other in accepted:
            other.close()
        writer.close()
        await close_server(server)
        return reported

    reported = run_on(backend, main, capacity=3)
    assert isinstance(reported[0], PoolFullError)
    assert "capacity of 3" in str(reported[0])


def test_run_refuses_what_asyncio_run_refuses(backend):
    with pytest.raises(ValueError):
        poorio.aio.run(lambda: None, backend=backend)

    async def nested():
        inner = asyncio.sleep(0)
        try:
            with pytest.raises(RuntimeError):
                poorio.aio.run(inner, backend=backend)
        finally:
            inner.close()
        return True

    assert run_on(backend, nested)


def test_run_cancels_leftover_tasks(backend):
    cancelled = []

    async def forever():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main():
        asyncio.ensure_future(forever())
        await asyncio.sleep(0)
        return "done"

    assert run_on(backend, main) == "done"
    assert cancelled == [True]


def test_unknown_backend_is_a_clear_error(backend):
    with pytest.raises(BackendUnavailableError, match="unknown backend"):
        poorio.aio.new_event_loop(backend="no-such-" + backend)


@pytest.mark.skipif(sys.version_info >= (3, 16), reason="asyncio has no event loop policies from Python 3.16")
def test_install_policy(backend):
    async def main():
        return asyncio.get_running_loop()._selector.backend

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            poorio.aio.install(backend=backend)
            ran_on = asyncio.run(asyncio.wait_for(main(), SAFETY))
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_event_loop_policy(None)
    assert ran_on == backend
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    if sys.version_info >= (3, 14):
        assert deprecations and "poorio.aio.run" in str(deprecations[0].message)
    else:
        assert deprecations == []


def _run_demo(backend: str, *args: str) -> str:
    env = dict(os.environ, POORIO_BACKEND=backend, PYTHONPATH=ROOT)
    done = subprocess.run(
        [sys.executable, DEMO, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


@posix_only
def test_demo_tour(backend):
    out = _run_demo(backend)
    assert f"asyncio on poorio: {backend} backend" in out
    assert "200 concurrent clients" in out
    assert "said 'subprocess a from hello'" in out
    assert "timed out after 0.1 s" in out


def test_demo_compare(backend):
    out = _run_demo(backend, "--compare", "--clients", "2", "--rounds", "5", "--repeat", "1", "--calls", "100")
    contenders = [line for line in out.splitlines() if "round trips/s" in line]
    assert len(contenders) == 1 + len(selector_classes())
    assert any(f"poorio.aio ({backend})" in line for line in contenders)
