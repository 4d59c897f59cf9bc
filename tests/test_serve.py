"""serve_tcp: the plain server, N process workers (own SO_REUSEPORT listeners or one inherited), crash and restart, clean stops."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

import poorio
import poorio.serve
from actor_targets import alive
from fiber_helpers import run
from poorio.platform import facts

LIMIT = 60  # seconds: a safety net, never a measurement


def test_one_worker_is_the_plain_in_process_server():
    async def main():
        ready = poorio.Completion()
        with poorio.fail_after(LIMIT):
            async with poorio.Group() as group:
                server = group.spawn(
                    functools.partial(poorio.serve_tcp, "serve_targets:echo_line", "127.0.0.1", 0, on_ready=ready.callback)
                )
                host, port = await ready
                replies = []
                for text in (b"one\n", b"two\n"):
                    stream = await poorio.connect_tcp(host, port)
                    async with stream:
                        await stream.write_all(text)
                        replies.append(await stream.read_line())
                server.cancel()  # a cancelled server stops cleanly
        return replies, server.cancelled()

    assert run(main) == ([b"one\n", b"two\n"], True)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_handler_factory_is_called_once_per_worker_with_factory_args(workers):
    async def main():
        ready = poorio.Completion()
        with poorio.fail_after(LIMIT):
            server = poorio.spawn(functools.partial(
                poorio.serve_tcp, "serve_targets:greeter", "127.0.0.1", 0, workers,
                on_ready=ready.callback, factory_args=("hello",),
            ))
            _, port = await ready
            stream = await poorio.connect_tcp("127.0.0.1", port)
            async with stream:
                line = await stream.read_line()
            server.cancel()
            try:
                await server.join()
            except poorio.Cancelled:
                pass
        return line

    word, _, pid = run(main).decode().split()
    assert word == "hello" and (int(pid) == os.getpid()) == (workers == 1)


def test_bad_arguments():
    async def main():
        with pytest.raises(ValueError, match="workers"):
            await poorio.serve_tcp("serve_targets:whoami", "127.0.0.1", 0, 0)

        async def local(stream):
            pass

        with pytest.raises(TypeError, match="importable by name"):
            await poorio.serve_tcp(local, "127.0.0.1", 0, 2)
        with pytest.raises(ModuleNotFoundError, match="no_such_module"):
            await poorio.serve_tcp("no_such_module:handler", "127.0.0.1", 0, 2)
        with pytest.raises(ValueError, match="module:function"):
            await poorio.serve_tcp("serve_targets", "127.0.0.1", 0, 2)
        with pytest.raises(TypeError, match="cannot carry"):
            await poorio.serve_tcp("serve_targets:greeter", "127.0.0.1", 0, 2, factory_args=({1},))
        return True

    assert run(main)


SERVER = textwrap.dedent(
    """
    import functools, sys, poorio, poorio.serve
    poorio.serve.REUSE_PORT_BALANCES = {reuse_port}
    def ready(address):
        print(address[1], flush=True)
    poorio.run(functools.partial(poorio.serve_tcp, "serve_targets:whoami", "127.0.0.1", 0, 2, on_ready=ready, grace=1))
    print("stopped", flush=True)
    """
)

MODES = [pytest.param(False, id="inherited-listener")]
if facts.REUSE_PORT_BALANCES:
    MODES.append(pytest.param(True, id="reuse-port"))


def visit(port: int, answer: bytes = b"hi\n") -> int:
    """Connect once; return the serving worker's pid (after saying ``answer``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=LIMIT) as conn, conn.makefile("rb") as reader:
        pid = int(reader.readline())
        conn.sendall(answer)
        if answer != b"crash\n":
            assert reader.readline() == b"bye\n"
        return pid


def pids_until(port: int, wanted, resets_allowed: bool = False) -> set:
    """Visit, now and then, until the pids seen satisfy ``wanted(pids)``.

    ``resets_allowed``: after a worker's crash with a listener per worker,
    a connection the kernel queued at the dead listener is reset
    (docs/actors.md); such a visit is tried again.
    """
    seen = set()
    deadline = time.monotonic() + LIMIT / 2
    while time.monotonic() < deadline:
        try:
            seen.add(visit(port))
        except ConnectionResetError:
            if not resets_allowed:
                raise
        if wanted(seen):
            return seen
        time.sleep(0.005)
    raise AssertionError(f"only reached {seen}")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="stops the server with POSIX signals")
@pytest.mark.parametrize("reuse_port", MODES)
@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
def test_two_workers_serve_survive_a_crash_and_stop_cleanly(reuse_port, how):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER.format(reuse_port=reuse_port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        port = int(server.stdout.readline())
        first = pids_until(port, lambda seen: len(seen) == 2)  # one client served by each worker
        assert os.getpid() not in first and server.pid not in first
        victim = visit(port, b"crash\n")
        assert victim in first
        deadline = time.monotonic() + LIMIT
        while victim in _alive_of(first) and time.monotonic() < deadline:
            time.sleep(0.01)
        later = pids_until(port, lambda seen: len(seen - first) >= 1 and len(seen) >= 2, resets_allowed=reuse_port)
        replacement = later - first
        assert len(replacement) == 1  # the crashed worker was started again, and serves
        server.send_signal(getattr(signal, how))
        out, err = server.communicate(timeout=LIMIT)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert (server.returncode, out) == (0, b"stopped\n"), err
    assert b"worker" in err and b"failed" in err and b"starting it again" in err, err
    assert b"exited with status 3" in err, err
    assert not _alive_of(first | later)  # every worker was stopped and reaped


async def avisit(port: int, answer: bytes = b"hi\n") -> int:
    """``visit`` from a fiber, over poorio's own streams."""
    stream = await poorio.connect_tcp("127.0.0.1", port)
    async with stream:
        pid = int(await stream.read_line())
        await stream.write_all(answer)
        if answer != b"crash\n":
            assert await stream.read_line() == b"bye\n"
        else:
            assert await stream.read_line() == b""  # the worker died
        return pid


@pytest.mark.parametrize("reuse_port", MODES)
def test_workers_serve_from_a_fiber_restart_after_a_crash_and_stop_when_cancelled(reuse_port, monkeypatch, caplog):
    monkeypatch.setattr(poorio.serve, "REUSE_PORT_BALANCES", reuse_port)

    async def until(port, wanted, after_crash=False):
        seen = set()
        while not wanted(seen):
            try:
                seen.add(await avisit(port))
            except ConnectionResetError:
                # With a listener per worker, a connection the kernel queued
                # at the crashed worker's listener is reset (docs/actors.md).
                if not (after_crash and reuse_port):
                    raise
            await poorio.sleep(0.005)
        return seen

    async def main():
        ready = poorio.Completion()
        with poorio.fail_after(LIMIT):
            server = poorio.spawn(functools.partial(
                poorio.serve_tcp, "serve_targets:whoami", "127.0.0.1", 0, 2, on_ready=ready.callback, grace=1
            ))
            _, port = await ready
            first = await until(port, lambda seen: len(seen) == 2)
            victim = await avisit(port, b"crash\n")
            later = await until(port, lambda seen: len(seen - first) >= 1 and len(seen) >= 2, after_crash=True)
            server.cancel()  # stops every worker: each closes its listener and exits
            try:
                await server.join()
            except poorio.Cancelled:
                pass  # the server's own cancellation, re-raised by join
        return first, victim, later, server

    with caplog.at_level("ERROR", logger="poorio"):
        first, victim, later, server = run(main)
    assert victim in first and len(later - first) == 1
    assert server.cancelled()
    assert any("worker" in r.getMessage() and "starting it again" in r.getMessage() for r in caplog.records)


def _alive_of(pids) -> set:
    return {pid for pid in pids if alive(pid)}


@pytest.mark.skipif(not facts.REUSE_PORT_BALANCES, reason="the kernel here does not balance SO_REUSEPORT listeners")
def test_the_kernel_balances_reuse_port_listeners():
    """The fact REUSE_PORT_BALANCES: connections spread over every listener bound to the port."""
    listeners = []
    try:
        for _ in range(2):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("127.0.0.1", listeners[0].getsockname()[1] if listeners else 0))
            sock.listen(128)
            listeners.append(sock)
        port = listeners[0].getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
        counts = []
        for sock in listeners:
            sock.setblocking(False)
            accepted = 0
            while True:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    break
                conn.close()
                accepted += 1
            counts.append(accepted)
        for client in clients:
            client.close()
    finally:
        for sock in listeners:
            sock.close()
    assert sum(counts) == 64 and min(counts) > 0, counts


@pytest.mark.skipif(not facts.SOCKETS_PASS_BY_FD, reason="fds are not inherited by number here")
def test_adopting_an_inherited_listener_keeps_it_non_blocking():
    """O_NONBLOCK is shared by every worker holding the listener: taking it over must not clear it (PyPy did)."""
    import fcntl

    from poorio.actors._child import _adopt

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        adopted = _adopt(os.dup(listener.fileno()))
        with adopted:
            flags = fcntl.fcntl(listener.fileno(), fcntl.F_GETFL)
            assert flags & os.O_NONBLOCK and adopted.gettimeout() == 0.0
            assert not os.get_inheritable(adopted.fileno())
    assert socket.getdefaulttimeout() is None
