"""What is io_uring's own: the probe, the pool's sharp edges, and a pool and a proactor sharing one ring.

The backend-agnostic contracts run elsewhere (tests/test_pool.py on the
pool, tests/test_proactor.py on the Ring); these cases are about the
choices uring.py's essay describes.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import time

import pytest

import poorio.platform as platform
from poorio.errors import BackendUnavailableError
from poorio.platform import READABLE, WRITABLE, _uring, new_pool, uring

LINUX = sys.platform.startswith("linux")
pytestmark = pytest.mark.skipif(not uring.available(), reason=f"io_uring is not usable here: {uring.unavailable_reason()}")


@pytest.fixture
def pool():
    with new_pool(8, "uring") as pool:
        yield pool
        assert len(pool) == 0


def test_the_probe_says_why_and_agrees_with_the_choice():
    assert uring.unavailable_reason() is None
    assert "uring" in platform.backends()
    assert _uring.kernel_version() >= _uring.MIN_KERNEL
    if os.environ.get("POORIO_BACKEND") != "uring":
        assert platform.default_backend() != "uring"  # opt-in until the scheduler has a proactor path


def test_remove_reaches_the_kernel_before_remove_returns(pool):
    # An armed poll holds the open file; after remove() and close() the
    # listener must be gone at once, or it would accept (and later reset) a
    # connection that should have been refused.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    address = listener.getsockname()
    pool.add(listener, READABLE)
    assert pool.cycle(0) == []  # the poll is armed in the kernel now
    pool.remove(listener)
    listener.close()
    with socket.socket() as client:
        with pytest.raises(ConnectionRefusedError):
            client.connect(address)


def test_a_registered_fd_closed_without_remove_keeps_its_file_open(pool):
    # The documented sharp edge: remove before you close.
    reader, writer = os.pipe()
    try:
        pool.add(writer, WRITABLE)
        assert pool.cycle(0) == [(writer, WRITABLE)]
        pool.modify(writer, READABLE)  # armed, and never ready
        assert pool.cycle(0) == []
        os.close(writer)
        os.set_blocking(reader, False)
        with pytest.raises(BlockingIOError):  # no EOF: the armed poll still holds the write end
            os.read(reader, 1)
        pool.remove(writer)
        assert os.read(reader, 1) == b""  # released by remove()
    finally:
        os.close(reader)


def test_a_proactor_operation_shares_the_pools_wait(pool):
    a, b = socket.socketpair()
    try:
        pool.add(a, READABLE)
        buf = bytearray(8)
        pool.ring.submit_recv(b, buf, "recv")
        assert pool.cycle(0) == [] and pool.ring.completions() == []
        a.send(b"ring")
        # The completion ends the wait, though no fd became ready.
        assert pool.cycle(5.0) == []
        assert pool.ring.completions() == [("recv", 4, 0)]
        assert bytes(buf[:4]) == b"ring"
        b.send(b"pool")
        assert pool.cycle(5.0) == [(a.fileno(), READABLE)]
        pool.remove(a)
    finally:
        a.close()
        b.close()


def test_a_completion_a_removal_reaped_does_not_let_the_next_cycle_wait(pool):
    """remove() flushes the ring at once, and may reap an operation's completion: the next cycle returns at once."""
    a, b = socket.socketpair()
    try:
        pool.add(a, READABLE)
        assert pool.cycle(0) == []  # the ring is enabled and a's poll armed
        pool.ring.submit_nop("nop")
        pool.remove(a)  # its flush submits the NOP too, which completes inline and is reaped
        started = time.monotonic()
        assert pool.cycle(5.0) == []
        assert time.monotonic() - started < 2.5  # not the 5 s wait for a completion already here
        assert pool.ring.completions() == [("nop", 0, 0)]
    finally:
        a.close()
        b.close()


def test_many_fds_ready_at_once_stay_reported(pool):
    pairs = [socket.socketpair() for _ in range(4)]
    try:
        for a, b in pairs:
            pool.add(a, READABLE)
            b.send(b"x")
        expected = sorted((a.fileno(), READABLE) for a, _ in pairs)
        for _ in range(5):  # level-triggered: every cycle, re-armed each time
            assert sorted(pool.cycle(0)) == expected
        for a, _ in pairs:
            pool.remove(a)
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_the_ring_refuses_a_thread_that_does_not_own_it():
    import threading

    with new_pool(4, "uring") as pool:
        pool.cycle(0)  # this thread owns it now
        caught = []
        thread = threading.Thread(target=lambda: caught.append(_catch(lambda: pool.cycle(0))))
        thread.start()
        thread.join(10)
        assert isinstance(caught[0], OSError) and caught[0].errno == errno.EEXIST


def test_a_ring_made_in_one_thread_is_owned_by_the_one_that_waits():
    import threading

    pool = new_pool(4, "uring")  # made here...
    results = []
    a, b = socket.socketpair()
    try:
        pool.add(a, READABLE)
        b.send(b"x")

        def waiter():
            results.append(pool.cycle(5.0))  # ...owned there

        thread = threading.Thread(target=waiter)
        thread.start()
        thread.join(10)
        assert results == [[(a.fileno(), READABLE)]]
    finally:
        a.close()
        b.close()
        thread = threading.Thread(target=pool.close)  # and closed by its owner
        thread.start()
        thread.join(10)


def _catch(call):
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - handed back to the test
        return exc
    return None


def test_unavailable_rings_say_why(monkeypatch):
    monkeypatch.setattr(_uring, "_probed", "io_uring_setup is not implemented here (ENOSYS: qemu-user)")
    assert not uring.available()
    with pytest.raises(BackendUnavailableError, match="ENOSYS"):
        uring.Ring(4)
    with pytest.raises(BackendUnavailableError, match="ENOSYS"):
        uring.SocketIoPool(4)


def test_a_poll_reaped_by_the_rings_own_wait_still_reaches_the_pool(pool):
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    try:
        pool.add(a, READABLE)
        pool.add(c, READABLE)
        assert pool.cycle(0) == []  # both polls armed in the kernel
        b.send(b"x")
        d.send(b"y")
        assert pool.ring.wait(0) == []  # reaps both polls: no operation of its own completed
        pool.remove(c)  # one of them is stale now
        assert pool.cycle(0) == [(a.fileno(), READABLE)]
        assert pool.cycle(0) == [(a.fileno(), READABLE)]  # and re-armed as usual
        pool.remove(a)
    finally:
        for sock in (a, b, c, d):
            sock.close()


def test_more_operations_than_the_submission_queue_holds():
    # The SQ holds 1,024 entries here; the 1,025th submission pushes the
    # queue to the kernel first, and what completes then is not lost.
    with uring.Ring(1500) as ring:
        for n in range(1500):
            ring.submit_nop(n)
        got = []
        while len(got) < 1500:
            batch = ring.wait(5.0)
            assert batch, f"only {len(got)} of 1500 completed"
            got += batch
        assert sorted(token for token, _, _ in got) == list(range(1500))
        assert all(result == 0 for _, result, _ in got)


def test_a_poll_that_fires_with_nothing_asked_for_is_armed_again_before_the_wait(pool):
    # A peer's half-close completes a WRITABLE-only poll with a bare
    # POLLRDHUP: nothing to report -- and the fd must be watched again before
    # the cycle goes back to sleep, or the writability that follows is lost.
    import threading
    import time

    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        b.setblocking(False)
        try:
            while True:
                a.send(b"x" * 65536)
        except BlockingIOError:
            pass  # a is not writable now
        pool.add(a, WRITABLE)
        assert pool.cycle(0) == []

        def drain_later():
            time.sleep(0.1)
            try:
                while b.recv(1 << 20):
                    pass
            except BlockingIOError:
                pass

        drainer = threading.Thread(target=drain_later)
        b.shutdown(socket.SHUT_WR)
        drainer.start()
        started = time.monotonic()
        ready = pool.cycle(5.0)
        elapsed = time.monotonic() - started
        drainer.join(5)
        assert ready == [(a.fileno(), WRITABLE)]
        assert elapsed < 4.0, f"the writability came {elapsed:.1f} s late: the fd was not re-armed"
        pool.remove(a)
    finally:
        a.close()
        b.close()
