"""The proactor contract -- uring.Ring and iocp.Port -- with real sockets, pipes and files.

One class of cases, run once per completion backend (skipped, with the
probe's reason, where it cannot run: io_uring off Linux 6.2+ or under
qemu-user; IOCP off Windows).  The contract, from uring.py's essay: every
submitted operation completes exactly once, with an int or the kernel's
OSError; its buffer stays pinned until then, cancelled or not.
"""

from __future__ import annotations

import errno
import os
import platform
import signal
import socket
import struct
import threading
import time

import pytest

from poorio.errors import AlreadyRegisteredError, ClosedResourceError, PoolFullError
from poorio.platform import READABLE, WRITABLE
from poorio.platform._sockaddr import sockaddr
from proactor_support import KITS, WINDOWS

PATIENCE = 5.0  # a safety net: nothing here should come near it
PYPY = platform.python_implementation() == "PyPy"


@pytest.fixture(params=sorted(KITS))
def kit(request):
    return KITS[request.param]()


@pytest.fixture
def ring(kit):
    ring = kit.ring()
    try:
        yield ring
    finally:
        left = len(ring)
        ring.close()
    assert left == 0, f"the test left {left} operations in flight"


@pytest.fixture
def sockets(pair):
    """A connected pair of non-blocking sockets (conftest's ``pair``)."""
    return pair


def collect(ring, count: int = 1, patience: float = PATIENCE) -> dict:
    """Wait until ``count`` completions arrived; {token: (result, flags)}."""
    got = {}
    deadline = time.monotonic() + patience
    while len(got) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"only {len(got)} of {count} completions arrived: {got}"
        for token, result, flags in ring.wait(left):
            assert token not in got, f"{token!r} completed twice"
            got[token] = (result, flags)
    return got


def result_of(ring, token, patience: float = PATIENCE):
    return collect(ring, 1, patience)[token][0]


def assert_os_error(result, *codes) -> None:
    assert isinstance(result, OSError), f"expected an OSError, got {result!r}"
    assert result.errno in codes, f"errno {result.errno} ({result}), expected one of {codes}"
    assert result.strerror


class TestProactor:
    # sockets

    def test_recv_completes_when_data_arrives(self, ring, sockets):
        a, b = sockets
        buf = bytearray(16)
        ring.submit_recv(a, buf, "recv")
        assert ring.wait(0) == [] and len(ring) == 1
        b.send(b"hello")
        assert result_of(ring, "recv") == 5
        assert bytes(buf[:5]) == b"hello" and len(ring) == 0

    def test_recv_into_a_memoryview_slice(self, ring, sockets):
        a, b = sockets
        buf = bytearray(b"." * 8)
        b.send(b"xyz")
        ring.submit_recv(a.fileno(), memoryview(buf)[2:6], 1)
        assert result_of(ring, 1) == 3
        assert buf == bytearray(b"..xyz...")

    def test_send(self, ring, sockets):
        a, b = sockets
        ring.submit_send(a, b"from the ring", "send")
        assert result_of(ring, "send") == 13
        assert b.recv(64) == b"from the ring"

    def test_send_from_a_bytearray_and_a_readonly_view(self, ring, sockets):
        a, b = sockets
        ring.submit_send(a, bytearray(b"one,"), 1)
        assert result_of(ring, 1) == 4
        ring.submit_send(a, memoryview(b"--two--")[2:5], 2)
        assert result_of(ring, 2) == 3
        assert b.recv(64) == b"one,two"

    def test_recv_reports_end_of_stream(self, ring, sockets):
        a, b = sockets
        ring.submit_recv(a, bytearray(8), "eof")
        b.close()
        assert result_of(ring, "eof") == 0

    def test_recv_after_a_reset_is_the_kernels_error(self, ring):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            client = socket.create_connection(listener.getsockname())
            server, _ = listener.accept()
        with client, server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            ring.submit_recv(client, bytearray(8), "reset")
            server.close()
            result = result_of(ring, "reset")
            if result == 0:
                pytest.skip("this kernel reports a reset as end of stream (Wine)")
            assert_os_error(result, errno.ECONNRESET)

    def test_send_to_a_closed_peer_is_epipe(self, ring, sockets):
        a, b = sockets
        b.close()
        results = []
        for round_ in range(3):  # the first send may still be accepted by the kernel
            ring.submit_send(a, b"x" * 1000, round_)
            results.append(result_of(ring, round_))
        assert_os_error(results[-1], errno.EPIPE, errno.ECONNRESET, errno.ECONNABORTED)

    def test_error_completions_carry_the_real_errno(self, ring, kit):
        if kit.name != "uring":
            pytest.skip("IOCP refuses a bad handle at submission, not in a completion")
        reader, writer = os.pipe()
        os.close(reader)
        os.close(writer)
        ring.submit_read(reader, bytearray(4), -1, "bad")
        result = result_of(ring, "bad")
        assert_os_error(result, errno.EBADF)
        assert result.strerror == os.strerror(errno.EBADF)
        r, w = os.pipe()
        try:
            ring.submit_recv(r, bytearray(4), "not a socket")
            assert_os_error(result_of(ring, "not a socket"), errno.ENOTSOCK)
        finally:
            os.close(r)
            os.close(w)

    def test_accept_and_connect(self, ring, kit):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(4)
            listener.setblocking(False)
            ring.submit_accept(listener, "accept")
            client = socket.socket()
            client.setblocking(False)
            try:
                ring.submit_connect(client, sockaddr(socket.AF_INET, listener.getsockname()), "connect")
                got = collect(ring, 2)
                assert got["connect"][0] == 0
                accepted = got["accept"][0]
                assert isinstance(accepted, int) and accepted >= 0
                if not WINDOWS:
                    assert not os.get_inheritable(accepted) and not os.get_blocking(accepted)
                server = socket.socket(fileno=accepted)
                with server:
                    client.send(b"ping")
                    ring.submit_recv(server, bytearray(4), "recv")
                    assert result_of(ring, "recv") == 4
                    assert server.getpeername() == client.getsockname()
            finally:
                kit_forget(ring, client)
                client.close()

    @pytest.mark.parametrize("family", ["AF_INET6", "AF_UNIX"])
    def test_connect_in_other_families(self, ring, kit, family, tmp_path):
        if kit.name != "uring" or not hasattr(socket, family):
            pytest.skip(f"{family} connects are checked on io_uring")
        family = getattr(socket, family)
        with socket.socket(family, socket.SOCK_STREAM) as listener:
            if family == socket.AF_UNIX:
                address = str(tmp_path / "listener")
            else:
                if not socket.has_ipv6:
                    pytest.skip("no IPv6 here")
                address = ("::1", 0)
            try:
                listener.bind(address)
            except OSError as exc:
                pytest.skip(f"cannot bind {address}: {exc}")
            listener.listen(1)
            with socket.socket(family, socket.SOCK_STREAM) as client:
                client.setblocking(False)
                ring.submit_connect(client, sockaddr(family, listener.getsockname()), "connect")
                assert result_of(ring, "connect") == 0
                server, _ = listener.accept()
                with server:
                    assert client.getpeername() == server.getsockname()

    def test_connect_refused(self, ring):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            address = probe.getsockname()  # bound, never listening: a connect is refused
            client = socket.socket()
            client.setblocking(False)
            try:
                ring.submit_connect(client, sockaddr(socket.AF_INET, address), "refused")
                assert_os_error(result_of(ring, "refused"), errno.ECONNREFUSED)
            finally:
                kit_forget(ring, client)
                client.close()

    def test_poll_once(self, ring, sockets):
        a, b = sockets
        ring.submit_poll(a, READABLE, "r")
        ring.submit_poll(a, WRITABLE, "w")
        assert collect(ring, 1) == {"w": (WRITABLE, 0)}
        b.send(b"!")
        assert collect(ring, 1) == {"r": (READABLE, 0)}

    # pipes and files

    def test_pipe_read_and_write(self, ring, kit):
        reader, writer = kit.pipe()
        try:
            buf = bytearray(32)
            ring.submit_read(reader, buf, -1, "read")
            assert ring.wait(0) == []
            ring.submit_write(writer, b"through a pipe", -1, "write")
            got = collect(ring, 2)
            assert got["write"][0] == 14 and got["read"][0] == 14
            assert bytes(buf[:14]) == b"through a pipe"
        finally:
            kit.close(ring, reader)
            kit.close(ring, writer)

    def test_pipe_read_sees_end_of_file(self, ring, kit):
        reader, writer = kit.pipe()
        try:
            ring.submit_read(reader, bytearray(8), -1, "read")
            kit.close(ring, writer)
            writer = None
            assert result_of(ring, "read") == 0  # IOCP: ERROR_BROKEN_PIPE, read as the end
        finally:
            kit.close(ring, reader)
            if writer is not None:
                kit.close(ring, writer)

    def test_file_reads_and_writes_at_offsets(self, ring, kit, tmp_path):
        path = str(tmp_path / "data")
        handle = kit.open_file(path, write=True)
        try:
            ring.submit_write(handle, b"0123456789", 0, "w1")
            assert result_of(ring, "w1") == 10
            ring.submit_write(handle, b"ab", 4, "w2")
            assert result_of(ring, "w2") == 2
            buf = bytearray(6)
            ring.submit_read(handle, buf, 2, "r")
            assert result_of(ring, "r") == 6 and buf == bytearray(b"23ab67")
            ring.submit_read(handle, bytearray(4), 10, "eof")
            assert result_of(ring, "eof") == 0
        finally:
            kit.close(ring, handle)
        with open(path, "rb") as check:
            assert check.read() == b"0123ab6789"

    def test_file_read_at_the_current_position(self, ring, kit, tmp_path):
        if kit.name != "uring":
            pytest.skip("overlapped file IO always names its offset")
        path = tmp_path / "data"
        path.write_bytes(b"abcdefgh")
        handle = kit.open_file(str(path))
        try:
            os.lseek(handle, 3, os.SEEK_SET)
            buf = bytearray(3)
            ring.submit_read(handle, buf, -1, "r")
            assert result_of(ring, "r") == 3 and buf == bytearray(b"def")
            assert os.lseek(handle, 0, os.SEEK_CUR) == 6
        finally:
            kit.close(ring, handle)

    # timeouts, cancellation, buffers

    def test_timeout(self, ring):
        started = time.monotonic()
        ring.submit_timeout(0.05, "t")
        assert result_of(ring, "t") == 0
        assert time.monotonic() - started >= 0.05

    def test_wait_times_out(self, ring, sockets):
        a, _ = sockets
        ring.submit_recv(a, bytearray(4), "never")
        started = time.monotonic()
        assert ring.wait(0.05) == []
        assert 0.05 <= time.monotonic() - started < PATIENCE
        assert ring.cancel("never")
        assert_os_error(result_of(ring, "never"), errno.ECANCELED)

    def test_cancel_keeps_the_buffer_until_the_completion(self, ring, sockets):
        a, b = sockets
        buf = bytearray(8)
        ring.submit_recv(a, buf, "recv")
        assert ring.wait(0) == []
        if not PYPY:  # CPython: the ring's pinned export forbids a resize in flight
            with pytest.raises(BufferError):
                buf.extend(b"more")
        assert ring.cancel("recv") is True
        assert ring.cancel("recv") is True  # asked already: no second cancel
        assert len(ring) == 1  # cancelling is not completing
        assert_os_error(result_of(ring, "recv"), errno.ECANCELED)
        assert len(ring) == 0 and ring.cancel("recv") is False
        buf.extend(b"more")  # released with the completion
        b.send(b"late")
        assert a.recv(8) == b"late"  # nothing was consumed by the cancelled receive

    def test_a_cancel_that_loses_the_race_delivers_the_data(self, ring, sockets):
        a, b = sockets
        b.send(b"already here")
        buf = bytearray(32)
        ring.submit_recv(a, buf, "recv")
        ring.cancel("recv")  # queued after the receive, which completes on submission
        got = collect(ring, 1)
        assert got["recv"][0] == 12 and bytes(buf[:12]) == b"already here"
        assert ring.wait(0.02) == []  # and exactly once

    def test_cancel_a_timeout(self, ring):
        ring.submit_timeout(30, "t")
        ring.wait(0)
        ring.cancel("t")
        assert_os_error(result_of(ring, "t"), errno.ECANCELED)

    def test_cancel_of_nothing(self, ring):
        assert ring.cancel("nobody") is False

    def test_tokens_are_unique_and_capacity_is_fixed(self, kit, sockets):
        a, _ = sockets
        with kit.ring(2) as small:
            small.submit_recv(a, bytearray(1), "one")
            with pytest.raises(AlreadyRegisteredError):
                small.submit_recv(a, bytearray(1), "one")
            small.submit_poll(a, READABLE, "two")
            with pytest.raises(PoolFullError, match=r"\b2\b"):
                small.submit_poll(a, READABLE, "three")
            assert len(small) == 2 and small.statistics().size == 2
        assert small.closed and len(small) == 0  # close drained both

    def test_close_cancels_and_drains(self, kit, sockets):
        a, b = sockets
        ring = kit.ring()
        buf = bytearray(8)
        ring.submit_recv(a, buf, "recv")
        ring.submit_timeout(30, "timer")
        ring.wait(0)
        ring.close()
        assert ring.closed and len(ring) == 0
        ring.close()  # idempotent
        for call in (lambda: ring.wait(0), lambda: ring.submit_poll(a, READABLE, "p")):
            with pytest.raises(ClosedResourceError):
                call()
        b.send(b"after")
        assert a.recv(8) == b"after"  # the cancelled receive took nothing

    def test_many_in_flight(self, kit, sockets):
        a, b = sockets
        with kit.ring(64) as big:
            for n in range(50):
                big.submit_timeout(0.001 * (n % 5), n)
            assert set(collect(big, 50)) == set(range(50))

    @pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="no setitimer here")
    def test_a_signal_does_not_shorten_a_wait(self, ring, sockets):
        a, _ = sockets
        ring.submit_recv(a, bytearray(1), "never")
        calls = []
        previous = signal.signal(signal.SIGALRM, lambda *args: calls.append(1))
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
            started = time.monotonic()
            assert ring.wait(0.2) == []
            elapsed = time.monotonic() - started
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        assert calls and 0.2 <= elapsed < PATIENCE
        ring.cancel("never")
        collect(ring, 1)

    def test_bad_arguments(self, ring, sockets):
        a, _ = sockets
        with pytest.raises(TypeError):
            ring.submit_recv(a, b"read-only", "x")
        with pytest.raises(ValueError):
            ring.submit_poll(a, 0, "x")
        with pytest.raises(ValueError):
            ring.submit_timeout(float("inf"), "x")
        assert len(ring) == 0

    def test_the_ring_belongs_to_the_thread_that_first_waits(self, kit):
        if kit.name != "uring":
            pytest.skip("an IOCP port may be waited on from any thread")
        ring = kit.ring()
        try:
            ring.submit_nop("first")
            assert collect(ring, 1) == {"first": (0, 0)}
            errors = []

            def other():
                try:
                    ring.wait(0)
                except OSError as exc:
                    errors.append(exc)

            thread = threading.Thread(target=other)
            thread.start()
            thread.join(PATIENCE)
            assert len(errors) == 1 and errors[0].errno == errno.EEXIST
        finally:
            ring.close()


def kit_forget(ring, sock) -> None:
    ring.forget(sock.fileno())
