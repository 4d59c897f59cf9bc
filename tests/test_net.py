"""TCP, Unix and UDP sockets against real peers: stdlib blocking sockets in threads, on every backend.

Covers large payloads through partial reads and writes, half-close, a
peer that resets, refused and timed-out connects, closing while a fiber
waits, socket options, and accept under EMFILE (in a subprocess with a
lowered RLIMIT_NOFILE).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import textwrap
import threading

import pytest

import poorio
from backend_support import ON_WINE
from fiber_helpers import backend, fill_send_buffer, run  # noqa: F401 (fixtures)
from poorio import fail_after, net, sleep, spawn, stats
from poorio.errors import ClosedResourceError
from poorio.streams import BLOCKING, FIBERS, WaitHook, blocking

MB = 1024 * 1024
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _payload(size: int) -> bytes:
    return os.urandom(1024) * (size // 1024)


def _sha(data) -> str:
    return hashlib.sha256(data).hexdigest()


class _Thread(threading.Thread):
    """A peer thread whose result (or exception) ``finish()`` hands back."""

    def __init__(self, fn, *args) -> None:
        super().__init__(daemon=True)
        self._fn, self._args = fn, args
        self.result = self.error = None
        self.start()

    def run(self) -> None:
        try:
            self.result = self._fn(*self._args)
        except BaseException as error:  # handed to the test by finish()
            self.error = error

    def finish(self):
        self.join(20)
        assert not self.is_alive(), "peer thread hung"
        if self.error is not None:
            raise self.error
        return self.result


def _recv_all(sock: socket.socket, chunk: int = 65536) -> bytes:
    parts = []
    while True:
        data = sock.recv(chunk)
        if not data:
            return b"".join(parts)
        parts.append(data)


def _echo_client(port: int, data: bytes) -> str:
    """Blocking client: send everything, half-close, read the echo until EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:

        def send():
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)  # half-close: the echo server sees EOF, answers on

        sender = _Thread(send)
        got = _recv_all(sock)
        sender.finish()
        return _sha(got)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _echo_once(listener) -> int:
    async with await listener.accept() as conn:
        total = 0
        while True:
            data = await conn.read_some()
            if not data:
                break
            total += len(data)
            await conn.write_all(data)
        await conn.send_eof()
        return total


def test_tcp_echo_megabytes_with_half_close(backend):
    data = _payload(6 * MB)

    async def main():
        async with await net.listen_tcp("127.0.0.1", 0) as listener:
            port = listener.local_address[1]
            peer = _Thread(_echo_client, port, data)
            with fail_after(20):
                total = await _echo_once(listener)
            return total, peer

    total, peer = run(main, backend=backend)
    assert total == len(data) and peer.finish() == _sha(data)


def test_client_writes_to_a_slow_reader_partially(backend):
    data = _payload(4 * MB)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def slow_reader():
        conn, _ = server.accept()
        with conn:
            digest, total = hashlib.sha256(), 0
            while True:
                chunk = conn.recv(4096)  # small reads: the writer sees partial writes and EAGAIN
                if not chunk:
                    break
                digest.update(chunk)
                total += len(chunk)
            conn.sendall(b"%d %s" % (total, digest.hexdigest().encode()))

    async def main():
        async with await net.connect_tcp("127.0.0.1", server.getsockname()[1]) as stream:
            with fail_after(20):
                await stream.write_all(data)
                await stream.send_eof()
                return await _read_to_end(stream)

    with server:
        peer = _Thread(slow_reader)
        reply = run(main, backend=backend)
        peer.finish()
    assert reply == b"%d %s" % (len(data), _sha(data).encode())


async def _read_to_end(stream) -> bytes:
    parts = []
    while True:
        data = await stream.read_some()
        if not data:
            return b"".join(parts)
        parts.append(data)


@pytest.mark.skipif(ON_WINE, reason="Wine's recv reports a reset connection as end of file, not ECONNRESET")
def test_peer_reset_is_econnreset(backend):
    def resetting_client(port):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # linger 0: the kernel sends RST instead of FIN

    async def main():
        async with await net.listen_tcp("127.0.0.1", 0) as listener:
            peer = _Thread(resetting_client, listener.local_address[1])
            async with await listener.accept() as conn:
                peer.finish()
                with fail_after(5):
                    with pytest.raises(ConnectionResetError) as info:
                        while await conn.read_some():
                            pass
                return info.value.errno

    assert run(main, backend=backend) == errno.ECONNRESET


def test_write_after_peer_closed_is_epipe_or_reset_not_sigpipe(backend):
    async def main():
        async with await net.listen_tcp("127.0.0.1", 0) as listener:
            client = socket.create_connection(listener.local_address)
            async with await listener.accept() as conn:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                with fail_after(5):
                    with pytest.raises(OSError) as info:
                        while True:
                            await conn.write_all(b"z" * 65536)
                return info.value.errno

    assert run(main, backend=backend) in (errno.EPIPE, errno.ECONNRESET)


def test_connect_refused_has_the_real_errno(backend):
    port = _free_port()

    async def main():
        with pytest.raises(ConnectionRefusedError) as info:
            await net.connect_tcp("127.0.0.1", port)
        return info.value.errno

    assert run(main, backend=backend) == errno.ECONNREFUSED


@pytest.fixture
def unanswered():
    """The address of a listener that never accepts, with its backlog full: a connect's SYN is dropped."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    fillers = []
    try:
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(server.getsockname())
            fillers.append(s)
        yield server.getsockname()
    finally:
        for s in fillers:
            s.close()
        server.close()


def test_connect_times_out_through_a_cancel_scope(backend, unanswered):
    async def main():
        with pytest.raises(TimeoutError):
            with fail_after(0.3):
                await net.connect_tcp(*unanswered)
        return stats().io_waits

    assert run(main, backend=backend) == 0


def test_connect_by_name(backend):
    async def main():
        async with await net.listen_tcp("127.0.0.1", 0) as listener:
            port = listener.local_address[1]
            with fail_after(20):
                client = await net.connect_tcp("localhost", port)
                async with client, await listener.accept() as conn:
                    await client.write_all(b"hi")
                    return await conn.read_exactly(2)

    assert run(main, backend=backend) == b"hi"


def test_closing_a_listener_wakes_accept(backend):
    async def main():
        listener = await net.listen_tcp("127.0.0.1", 0)

        async def acceptor():
            with pytest.raises(ClosedResourceError):
                await listener.accept()
            return "woken"

        f = spawn(acceptor)
        await sleep(0.01)
        listener.close()
        with fail_after(5):
            return await f.join(), listener.closed

    assert run(main, backend=backend) == ("woken", True)


def test_closing_a_socket_wakes_its_reader(backend):
    async def main():
        async with await net.listen_tcp("127.0.0.1", 0) as listener:
            client = socket.create_connection(listener.local_address)
            with client:
                conn = await listener.accept()

                async def reader():
                    with pytest.raises(ClosedResourceError):
                        await conn.read_some()
                    return "woken"

                f = spawn(reader)
                await sleep(0.01)
                conn.close()
                with fail_after(5):
                    result = await f.join()
                return result, stats().io_waits

    assert run(main, backend=backend) == ("woken", 0)


def test_socket_options_by_name(backend):
    async def main():
        async with await net.listen_tcp("127.0.0.1", 0) as listener:
            client = await net.connect_tcp(*listener.local_address)
            async with client, await listener.accept() as conn:
                before = (client.nodelay, conn.nodelay, listener.reuse_address)
                client.nodelay = False
                client.keep_alive = True
                client.set_option("receive_buffer_size", 65536)
                with pytest.raises(ValueError, match="unknown socket option"):
                    client.set_option("no_such_option", 1)
                after = (client.nodelay, client.keep_alive, client.get_option("receive_buffer_size") >= 65536)
                addresses = client.remote_address == conn.local_address
                return before, after, addresses

    # listen_tcp leaves SO_REUSEADDR off on Windows, where it would let others steal the port.
    reuse = sys.platform != "win32"
    assert run(main, backend=backend) == ((True, True, reuse), (False, True, True), True)


def test_udp_send_to_and_receive_from(backend):
    async def main():
        async with await net.open_udp("127.0.0.1") as a, await net.open_udp("127.0.0.1") as b:
            await a.send_to(b"ping", b.local_address)
            with fail_after(5):
                data, sender = await b.receive_from()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain:
                plain.sendto(b"from stdlib", a.local_address)
                with fail_after(5):
                    other, _ = await a.receive_from()
            return data, sender == a.local_address, other

    assert run(main, backend=backend) == (b"ping", True, b"from stdlib")


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets here")
def test_unix_stream_echo_and_socket_file_lifetime(backend, tmp_path):
    path = str(tmp_path / "echo.sock")

    async def main():
        listener = await net.listen_unix(path)
        async with listener:
            with pytest.raises(OSError) as taken:
                await net.listen_unix(path)
            client = await net.connect_unix(path)
            async with client, await listener.accept() as conn:
                await client.write_all(b"over unix\n")
                await client.send_eof()
                line = await conn.read_line()
                end = await conn.read_some()
        with pytest.raises(FileNotFoundError):
            await net.connect_unix(path)
        return line, end, taken.value.errno, os.path.exists(path)

    assert run(main, backend=backend) == (b"over unix\n", b"", errno.EADDRINUSE, False)


def test_blocking_hook_runs_tcp_without_a_scheduler():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def echo():
        conn, _ = server.accept()
        with conn:
            conn.sendall(_recv_all(conn))

    with server:
        peer = _Thread(echo)
        stream = blocking(net.connect_tcp(*server.getsockname(), wait=BLOCKING))
        with stream:
            blocking(stream.write_all(b"no fibers here"))
            blocking(stream.send_eof())
            reply = blocking(stream.read_exactly(14))
        peer.finish()
    assert reply == b"no fibers here"


_EMFILE_CHILD = textwrap.dedent(
    """
    import json, logging, os, socket, sys, time
    sys.path.insert(0, sys.argv[1])
    sys.path.insert(0, os.path.join(sys.argv[1], "tests"))
    from exhaust_fds import exhaust_fds, give_back
    from poorio import net
    from poorio import fail_after
    from poorio import run, spawn
    from poorio import sleep

    warnings = []
    class Count(logging.Handler):
        def emit(self, record):
            warnings.append(record.getMessage())
    logging.getLogger("poorio.net").addHandler(Count())

    async def main():
        listener = await net.listen_tcp("127.0.0.1", 0)
        client = socket.create_connection(listener.local_address)  # waits in the backlog
        hogs = exhaust_fds(64)                       # not one fd left
        accepted = spawn(listener.accept)
        start = time.process_time()
        await sleep(0.5)                             # accept keeps failing meanwhile
        cpu = time.process_time() - start
        give_back(hogs)
        with fail_after(5):
            conn = await accepted.join()             # the back-off retry gets it
        conn.close(); client.close(); listener.close()
        return cpu

    cpu = run(main)
    print(json.dumps({"cpu": cpu, "warnings": len(warnings), "first": warnings[:1]}))
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE is POSIX")
def test_accept_under_emfile_backs_off_instead_of_spinning(backend):
    env = dict(os.environ, POORIO_BACKEND=backend)
    proc = subprocess.run(
        [sys.executable, "-c", _EMFILE_CHILD, ROOT], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    # 0.5 s of back-off from 10 ms doubling: a handful of retries, each logged;
    # a spinning accept would log thousands and burn the whole 0.5 s of CPU.
    assert 1 <= report["warnings"] <= 10, report
    assert "Too many open files" in report["first"][0]
    assert report["cpu"] < 0.4, report


_EMFILE_NO_LOGGING_CHILD = textwrap.dedent(
    """
    import os, socket, sys, threading, time
    sys.path.insert(0, sys.argv[1])
    sys.path.insert(0, os.path.join(sys.argv[1], "tests"))
    from exhaust_fds import exhaust_fds, give_back
    from poorio import net
    from poorio.streams import BLOCKING, blocking

    # No scheduler here (so nothing else loads logging), and nothing imported
    # logging before poorio: accept's back-off must not need an import.
    listener = blocking(net.listen_tcp("127.0.0.1", 0, wait=BLOCKING))
    client = socket.create_connection(listener.local_address)
    hogs = exhaust_fds(64)

    def free():
        time.sleep(0.3)
        give_back(hogs)

    freer = threading.Thread(target=free)
    freer.start()
    conn = blocking(listener.accept())   # EMFILE first: backs off, then gets it
    freer.join()
    print("accepted", conn.remote_address == client.getsockname())
    conn.close(); client.close(); listener.close()
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE is POSIX")
def test_accept_under_emfile_needs_no_import():
    """accept's back-off imported logging lazily: out of fds, the import raised EMFILE out of accept()."""
    proc = subprocess.run(
        [sys.executable, "-c", _EMFILE_NO_LOGGING_CHILD, ROOT], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["accepted", "True"]
    assert "Too many open files; retrying in" in proc.stderr  # the warning reached the log (stderr)


def test_accept_lets_other_fibers_run_while_connections_are_queued(backend):
    """3,000 queued connections were accepted in one step: a ticker fiber stalled for all of them."""
    count = 200
    log = []

    async def ticker():
        while True:
            log.append("tick")
            await poorio.sleep(0)

    async def main():
        listener = await net.listen_tcp("127.0.0.1", 0, backlog=count)
        clients = [socket.create_connection(listener.local_address) for _ in range(count)]
        accepted = []
        try:
            async with poorio.Group() as g:
                g.spawn(ticker)
                for _ in range(count):
                    accepted.append(await listener.accept())
                    log.append("accept")
                g.cancel_scope.cancel()
        finally:
            for stream in accepted:
                stream.close()
            for sock in clients:
                sock.close()
            listener.close()
        return len(accepted)

    assert run(main, backend=backend, capacity=4 * count) == count
    runs, streak = [], 0
    for entry in log:
        if entry == "accept":
            streak += 1
        else:
            runs.append(streak)
            streak = 0
    runs.append(streak)
    assert sum(runs) == count
    assert max(runs) <= 16  # net._ACCEPT_BATCH accepts, then the ticker gets a turn


_FULL_POOL_CLIENTS = 40


def test_a_full_pool_holds_accept_back_and_the_server_serves_everyone(backend, caplog):
    """At a small capacity, the connections past it wait in the backlog instead of killing the server."""
    import logging

    capacity = 12
    served = []

    async def echo(stream):
        async with stream:
            while True:
                data = await stream.read_some()
                if not data:
                    break
                await stream.write_all(data)
        served.append(1)

    def clients(port, results):
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(_FULL_POOL_CLIENTS)]
        for i, sock in enumerate(socks):  # all connected (in the backlog); served in turn as others close
            with sock:
                sock.settimeout(30)
                sock.sendall(b"hello %d" % i)
                sock.shutdown(socket.SHUT_WR)
                reply = b""
                while True:
                    chunk = sock.recv(100)
                    if not chunk:
                        break
                    reply += chunk
                results.append(reply == b"hello %d" % i)

    async def main():
        results = []
        async with await net.listen_tcp("127.0.0.1", 0, backlog=_FULL_POOL_CLIENTS) as listener:
            thread = threading.Thread(target=clients, args=(listener.local_address[1], results))
            thread.start()
            try:
                async with poorio.Group() as g:

                    async def serve():
                        while True:
                            g.spawn(echo, await listener.accept())
                            assert stats().fds <= capacity

                    g.spawn(serve)
                    with fail_after(60):
                        while len(results) < _FULL_POOL_CLIENTS and thread.is_alive():
                            await poorio.sleep(0.01)
                    g.cancel_scope.cancel()
            finally:
                thread.join()
        return results

    with caplog.at_level(logging.WARNING, logger="poorio.net"):
        results = run(main, backend=backend, capacity=capacity)
    assert results == [True] * _FULL_POOL_CLIENTS
    assert len(served) == _FULL_POOL_CLIENTS
    held = [r for r in caplog.records if "pool is full" in r.getMessage()]
    assert len(held) == 1, [r.getMessage() for r in caplog.records]


# -- connects whose failure readiness may never report (Windows before 10 2004) --
#
# There, net checks SO_ERROR every facts.CONNECT_CHECK_INTERVAL seconds while
# the connect is pending.  These tests shorten the interval and run that path
# here, against real sockets; the hook below withholds writability, as such
# a Windows does for a failed connect.


class _Counting(WaitHook):
    """poorio's fiber hook, counting the sliced waits; ``writable`` may withhold readiness."""

    def __init__(self, report_writable: bool = True) -> None:
        self.report_writable = report_writable
        self.slices = 0

    async def writable_within(self, fd, seconds):
        self.slices += 1
        if self.report_writable:
            return await FIBERS.writable_within(fd, seconds)
        await sleep(seconds)
        return False

    async def writable(self, fd):
        raise AssertionError("a sliced connect must not wait for readiness without a limit")

    async def readable(self, fd):
        await FIBERS.readable(fd)

    async def checkpoint(self):
        await FIBERS.checkpoint()

    async def sleep(self, seconds):
        await FIBERS.sleep(seconds)

    def closing(self, fd):
        FIBERS.closing(fd)


@pytest.fixture
def sliced_connects(monkeypatch):
    monkeypatch.setattr(net.tcp, "CONNECT_CHECK_INTERVAL", 0.02)


def test_a_sliced_connect_connects(backend, sliced_connects):
    with socket.create_server(("127.0.0.1", 0)) as server:
        hook = _Counting()

        async def main():
            with fail_after(5):
                async with await net.connect_tcp(*server.getsockname(), wait=hook) as stream:
                    conn, _ = server.accept()
                    with conn:
                        conn.sendall(b"hello")
                        return await stream.read_some(5)

        assert run(main, backend=backend) == b"hello"


def test_a_sliced_connect_finds_a_failure_readiness_never_reports(backend, sliced_connects):
    port = _free_port()
    hook = _Counting(report_writable=False)

    async def main():
        with fail_after(5), pytest.raises(ConnectionRefusedError) as info:
            await net.connect_tcp("127.0.0.1", port, wait=hook)
        return info.value.errno

    assert run(main, backend=backend) == errno.ECONNREFUSED
    assert hook.slices >= 1  # the failure was found by SO_ERROR, after a slice


def test_a_pending_sliced_connect_keeps_waiting(backend, sliced_connects, unanswered):
    hook = _Counting()

    async def main():
        with pytest.raises(TimeoutError):
            with fail_after(0.3):
                await net.connect_tcp(*unanswered, wait=hook)

    run(main, backend=backend)
    assert hook.slices >= 3  # SO_ERROR stayed 0, so it went on waiting


def test_writable_within_says_whether_the_fd_became_writable(backend, pair):
    a, b = pair
    fill_send_buffer(a)

    def drain():
        try:
            while b.recv(1 << 20):
                pass
        except BlockingIOError:
            pass

    async def main():
        full = await FIBERS.writable_within(a.fileno(), 0.05)
        drain()
        return full, await FIBERS.writable_within(a.fileno(), 5)

    assert run(main, backend=backend) == (False, True)
    assert blocking(BLOCKING.writable_within(a.fileno(), 5)) is True
    fill_send_buffer(a)
    assert blocking(BLOCKING.writable_within(a.fileno(), 0.05)) is False


def test_ports_outside_0_to_65535_or_of_the_wrong_type_are_refused(backend):
    """The resolver wrapped port 70000 to 4464; 1.5 raised an OSError saying 'Int or String expected'."""

    async def main():
        for call in (net.connect_tcp, net.listen_tcp, net.open_udp):
            with pytest.raises(ValueError, match="port must be from 0 to 65535, not 70000"):
                await call("127.0.0.1", 70000)
            with pytest.raises(ValueError, match="port"):
                await call("127.0.0.1", -1)
            for bad in (1.5, True, [80]):
                with pytest.raises(TypeError, match="port"):
                    await call("127.0.0.1", bad)
        async with await net.listen_tcp("127.0.0.1", "0") as listener:  # numeric strings still work
            return listener.local_address[1] > 0

    assert run(main, backend=backend)
