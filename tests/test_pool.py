"""The SocketIoPool contract, checked on every backend, with sockets and with raw fds.

One test class holds every case; fixtures run it once per backend poorio knows
(skipped where the backend cannot run) and, where a case is about an fd, once
with a socketpair handed over as socket objects and once with a pipe handed
over as plain ints.  Everything is real: sockets, pipes, signals, exec.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

from backend_support import ON_WINE, skip_unless_pipes
from fd_support import open_fds as listed_fds
import poorio.platform as platform
from poorio.errors import AlreadyRegisteredError, ClosedResourceError, NotRegisteredError, PoolFullError
from poorio.platform import ERROR, HANGUP, READABLE, WRITABLE, PoolStatistics, new_pool


CAPACITY = 8
# Safety nets only: nothing here should come near them unless something hangs.
PATIENCE = 5.0


# -- what the tests talk to ---------------------------------------------------


class Channel:
    """A one-way byte stream: the pool watches ``reader`` and ``writer``.

    ``reader``/``writer`` are what the test hands to the pool (socket objects
    or plain int fds); ``reader_fd``/``writer_fd`` are the numbers the pool
    reports.  Both ends are non-blocking.  Sockets are read and written as
    sockets: on Windows a SOCKET is not a C runtime fd, so os.read cannot.
    """

    def __init__(self, reader, writer) -> None:
        self.reader = reader
        self.writer = writer
        self.reader_fd = reader if isinstance(reader, int) else reader.fileno()
        self.writer_fd = writer if isinstance(writer, int) else writer.fileno()
        self._closed: set = set()  # ids of the handles already closed

    def send(self, data: bytes) -> int:
        if isinstance(self.writer, int):
            return os.write(self.writer, data)
        return self.writer.send(data)

    def recv(self) -> bytes:
        """Everything readable right now."""
        chunks = []
        while True:
            try:
                chunk = os.read(self.reader, 65536) if isinstance(self.reader, int) else self.reader.recv(65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def fill(self) -> None:
        """Write until the writer would block."""
        block = b"x" * 65536
        while True:
            try:
                self.send(block)
            except BlockingIOError:
                return

    def reader_is_open(self) -> bool:
        """Whether the kernel still knows the reading end."""
        try:
            if isinstance(self.reader, int):
                os.fstat(self.reader)
            else:  # asks the kernel, as fstat does (a SOCKET has no fstat on Windows)
                self.reader.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
        except OSError:
            return False
        return True

    def dup_reader(self):
        """A second handle on the reading end's file (an fd, or a socket: on Windows a SOCKET is no fd)."""
        return os.dup(self.reader) if isinstance(self.reader, int) else self.reader.dup()

    def close_reader(self) -> None:
        self._close(self.reader)

    def close_writer(self) -> None:
        self._close(self.writer)

    def close(self) -> None:
        self._close(self.reader)
        self._close(self.writer)

    def _close(self, handle) -> None:
        if id(handle) not in self._closed:
            self._closed.add(id(handle))
            if isinstance(handle, int):
                os.close(handle)
            else:
                handle.close()

    def move_reader_to(self, number: int) -> None:
        """Make the reading end live at fd ``number`` (free, or already the reader's)."""
        if self.reader_fd == number:  # the kernel handed out the lowest free number
            return
        if sys.platform == "win32":
            pytest.skip("Windows cannot put a SOCKET at a chosen handle number (dup2 is for C runtime fds)")
        if isinstance(self.reader, int):
            os.dup2(self.reader, number, inheritable=False)
            os.close(self.reader)
            self.reader = number
        else:
            old = self.reader.detach()
            os.dup2(old, number, inheritable=False)
            os.close(old)
            self.reader = socket.socket(fileno=number)
            self.reader.setblocking(False)
        self.reader_fd = number


def socketpair_channel() -> Channel:
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    return Channel(reader, writer)


def pipe_channel() -> Channel:
    reader, writer = os.pipe()
    os.set_blocking(reader, False)
    os.set_blocking(writer, False)
    return Channel(reader, writer)


@contextlib.contextmanager
def tcp_pair():
    """A connected loopback TCP (client, server); the listener is already gone."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    with client, server:
        yield client, server


# Windows has neither SIGALRM nor setitimer; test_wsapoll.py checks Ctrl-C instead.
needs_setitimer = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="no setitimer here")


@contextlib.contextmanager
def sigalrm(handler, first: float, interval: float = 0.0):
    """Deliver SIGALRM to ``handler`` after ``first`` s, then every ``interval`` s."""
    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, first, interval)
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def open_fds() -> set:
    """The fds open now -- not counting the one that listed them, closed by then."""
    fds = listed_fds()
    if fds is None:
        pytest.skip("no fd table to list here")
    return fds


def closed_fd() -> int:
    """An fd number that is certainly not open right now."""
    reader, writer = os.pipe()
    os.close(reader)
    os.close(writer)
    return reader


def wait_all(pool, count: int, patience: float = PATIENCE) -> list:
    """Cycle until ``count`` fds are ready at once (or ``patience`` runs out); the last ready list."""
    deadline = time.monotonic() + patience
    ready = pool.cycle(0)
    while len(ready) < count and time.monotonic() < deadline:
        ready = pool.cycle(0.05)
    return ready


def wait_for(pool, fd: int, wanted: int, patience: float = PATIENCE) -> int:
    """Cycle until ``fd`` is reported with every flag in ``wanted``; its flags."""
    deadline = time.monotonic() + patience
    while True:
        ready = dict(pool.cycle(max(deadline - time.monotonic(), 0)))
        flags = ready.get(fd, 0)
        if flags & wanted == wanted or time.monotonic() >= deadline:
            return flags
        if ready:  # level-triggered: something else stays ready, so do not spin on it
            time.sleep(0.005)


# -- fixtures -----------------------------------------------------------------


@pytest.fixture(params=platform.known_backends())
def backend(request) -> str:
    if request.param not in platform.backends():
        pytest.skip(f"backend {request.param} is not usable here")
    return request.param


@pytest.fixture
def pool(backend):
    """A pool the test must leave empty (or closed)."""
    pool = new_pool(CAPACITY, backend)
    try:
        yield pool
    finally:
        left = sorted(pool.fds())
        pool.close()
    assert not left, f"the test left fds {left} registered"


@pytest.fixture(params=[socketpair_channel, pipe_channel], ids=["socket", "fd"])
def make_channel(request, backend):
    """A factory of channels of one kind; every channel is closed at teardown."""
    if request.param is pipe_channel:
        skip_unless_pipes(backend)
    made = []

    def make() -> Channel:
        channel = request.param()
        made.append(channel)
        return channel

    yield make
    for channel in made:
        channel.close()


@pytest.fixture
def channel(make_channel) -> Channel:
    return make_channel()


# -- the contract -------------------------------------------------------------


class TestSocketIoPool:
    """The SocketIoPool contract; every method runs once per usable backend."""

    # readiness of each kind

    def test_readable(self, pool, channel):
        pool.add(channel.reader, READABLE)
        assert pool.cycle(0) == []
        channel.send(b"ping")
        assert pool.cycle(0) == [(channel.reader_fd, READABLE)]
        # Level-triggered and persistent: still reported until it is read.
        assert pool.cycle(0) == [(channel.reader_fd, READABLE)]
        assert channel.recv() == b"ping"
        assert pool.cycle(0) == []
        pool.remove(channel.reader)

    def test_writable(self, pool, channel):
        pool.add(channel.writer, WRITABLE)
        assert pool.cycle(0) == [(channel.writer_fd, WRITABLE)]
        channel.fill()
        assert pool.cycle(0) == []
        channel.recv()
        assert wait_for(pool, channel.writer_fd, WRITABLE) == WRITABLE
        pool.remove(channel.writer)

    def test_readable_wakes_a_blocking_cycle(self, pool, channel):
        pool.add(channel.reader, READABLE)
        channel.send(b"!")
        assert pool.cycle(None) == [(channel.reader_fd, READABLE)]
        pool.remove(channel.reader)

    @pytest.mark.parametrize("interest", [READABLE, WRITABLE], ids=["asked-readable", "asked-writable"])
    def test_hangup_after_peer_close(self, pool, channel, interest):
        pool.add(channel.reader, interest)
        channel.close_writer()
        # Reported whether asked for or not.
        assert wait_for(pool, channel.reader_fd, HANGUP) & HANGUP
        pool.remove(channel.reader)

    def test_error_when_reader_goes_away(self, pool, channel):
        # A pipe's writer sees POLLERR once no reader is left; a socket whose
        # peer closed with data unread sees ECONNRESET, hence POLLERR.
        channel.send(b"never read")
        pool.add(channel.writer, WRITABLE)
        channel.close_reader()
        assert wait_for(pool, channel.writer_fd, ERROR) & ERROR
        pool.remove(channel.writer)

    @pytest.mark.parametrize("as_fd", [False, True], ids=["socket", "fd"])
    def test_error_after_reset(self, pool, as_fd):
        with tcp_pair() as (client, server):
            handle = client.fileno() if as_fd else client
            pool.add(handle, READABLE)
            assert pool.cycle(0) == []
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            server.close()
            flags = wait_for(pool, client.fileno(), ERROR | HANGUP)
            assert flags & (ERROR | HANGUP) == ERROR | HANGUP
            pool.remove(handle)
            if ON_WINE:  # Wine's quirk: Windows and POSIX raise ECONNRESET here
                assert client.recv(1) == b""
            else:
                with pytest.raises(ConnectionResetError):
                    client.recv(1)

    def test_error_and_hangup_are_reported_unasked(self, pool, channel):
        pool.add(channel.writer, WRITABLE)
        channel.fill()
        assert pool.cycle(0) == []
        channel.close_reader()  # the writer is still not writable, but broken
        assert wait_for(pool, channel.writer_fd, ERROR) & ERROR
        pool.remove(channel.writer)

    # modify, remove, and the bookkeeping

    def test_modify(self, pool, channel):
        pool.add(channel.writer, READABLE)  # nothing ever comes back on the writer
        assert pool.cycle(0) == []
        pool.modify(channel.writer, WRITABLE)
        assert pool.interest(channel.writer) == WRITABLE
        assert pool.cycle(0) == [(channel.writer_fd, WRITABLE)]
        pool.modify(channel.writer, READABLE | WRITABLE)
        assert pool.cycle(0) == [(channel.writer_fd, WRITABLE)]
        pool.modify(channel.writer, READABLE | WRITABLE)  # the same again: fine
        pool.modify(channel.writer_fd, READABLE)
        assert pool.interest(channel.writer_fd) == READABLE
        assert pool.cycle(0) == []
        pool.remove(channel.writer)

    def test_modify_readable_away(self, pool, channel):
        pool.add(channel.reader, READABLE)
        channel.send(b"data")
        assert pool.cycle(0) == [(channel.reader_fd, READABLE)]
        pool.modify(channel.reader, WRITABLE)
        assert all(flags & READABLE == 0 for _, flags in pool.cycle(0))
        pool.modify(channel.reader, READABLE)
        assert pool.cycle(0) == [(channel.reader_fd, READABLE)]
        pool.remove(channel.reader)

    def test_bookkeeping(self, pool, channel):
        assert len(pool) == 0 and list(pool.fds()) == []
        pool.add(channel.reader, READABLE)
        pool.add(channel.writer_fd, WRITABLE)
        assert len(pool) == 2
        assert set(pool.fds()) == {channel.reader_fd, channel.writer_fd}
        assert channel.reader in pool and channel.reader_fd in pool
        assert channel.writer in pool and channel.writer_fd in pool
        assert pool.interest(channel.reader) == READABLE
        assert pool.interest(channel.writer) == WRITABLE
        assert -1 not in pool and object() not in pool and "3" not in pool
        pool.remove(channel.reader_fd)
        assert channel.reader not in pool and len(pool) == 1
        assert set(pool.fds()) == {channel.writer_fd}
        with pytest.raises(NotRegisteredError):
            pool.remove(channel.reader)
        pool.remove(channel.writer)
        assert len(pool) == 0

    def test_an_object_and_its_fd_are_one_registration(self, pool, channel):
        pool.add(channel.reader, READABLE)
        with pytest.raises(AlreadyRegisteredError, match=str(channel.reader_fd)):
            pool.add(channel.reader_fd, WRITABLE)
        with pytest.raises(AlreadyRegisteredError):
            pool.add(channel.reader, READABLE)
        assert pool.interest(channel.reader_fd) == READABLE and len(pool) == 1
        pool.remove(channel.reader_fd)

    def test_unknown_fd(self, pool, channel):
        for call in (pool.remove, pool.interest, lambda fd: pool.modify(fd, READABLE)):
            with pytest.raises(NotRegisteredError, match=str(channel.reader_fd)) as caught:
                call(channel.reader)
            assert isinstance(caught.value, KeyError)

    def test_remove_while_ready(self, pool, make_channel):
        channels = [make_channel() for _ in range(3)]
        for each in channels:
            pool.add(each.reader, READABLE)
            each.send(b"ready")
        assert sorted(pool.cycle(0)) == sorted((each.reader_fd, READABLE) for each in channels)
        first, second, third = channels
        pool.remove(first.reader)  # poll's array moves its last entry into the hole
        assert sorted(pool.cycle(0)) == sorted([(second.reader_fd, READABLE), (third.reader_fd, READABLE)])
        third.recv()
        assert pool.cycle(0) == [(second.reader_fd, READABLE)]
        pool.remove(second.reader)
        pool.remove(third.reader)
        assert pool.cycle(0) == []

    def test_remove_after_close(self, pool, channel):
        number = channel.reader_fd
        pool.add(channel.reader, READABLE)
        channel.send(b"pending")
        channel.close_reader()
        pool.remove(number)
        assert number not in pool and len(pool) == 0
        assert pool.cycle(0) == []

    def test_rebuild_keeps_every_registration(self, pool, make_channel):
        first, second = make_channel(), make_channel()
        pool.add(first.reader, READABLE)
        pool.add(second.writer, WRITABLE)
        pool.rebuild()
        assert pool.interest(first.reader) == READABLE and len(pool) == 2
        first.send(b"x")
        assert sorted(pool.cycle(0)) == sorted([(first.reader_fd, READABLE), (second.writer_fd, WRITABLE)])
        pool.remove(first.reader)
        pool.remove(second.writer)

    def test_rebuild_drops_a_registration_that_outlived_its_fd(self, pool, make_channel):
        """A registered fd closed while a duplicate keeps its file open (epoll's ghost): gone after rebuild."""
        channel = make_channel()
        number = channel.reader_fd
        dup = channel.dup_reader()
        try:
            pool.add(channel.reader, READABLE)
            channel.send(b"x")
            channel.close_reader()  # the file lives on in dup
            pool.remove(number)  # the kernel forgets it only where it can (epoll cannot)
            pool.rebuild()
            assert pool.cycle(0) == []  # no report for a number nobody registered
        finally:
            Channel(dup, dup).close()

    def test_readd_a_closed_and_reused_fd_number(self, pool, make_channel):
        first = make_channel()
        number = first.reader_fd
        pool.add(first.reader, READABLE)
        first.send(b"old data")
        first.close()
        pool.remove(number)
        second = make_channel()
        second.move_reader_to(number)
        pool.add(second.reader, READABLE)
        assert pool.cycle(0) == []  # nothing of the old file's readiness survives
        second.send(b"new data")
        assert pool.cycle(0) == [(number, READABLE)]
        assert second.recv() == b"new data"
        assert pool.cycle(0) == []
        pool.remove(number)

    def test_remove_after_the_number_was_already_reused(self, pool, make_channel):
        first = make_channel()
        number = first.reader_fd
        pool.add(first.reader, READABLE)
        first.close()
        second = make_channel()
        second.move_reader_to(number)  # before the pool heard of the close
        pool.remove(number)
        pool.add(second.reader, READABLE)
        assert pool.cycle(0) == []
        second.send(b"new data")
        assert pool.cycle(0) == [(number, READABLE)]
        pool.remove(number)

    # misuse

    def test_capacity(self, backend, make_channel):
        with new_pool(3, backend) as small:
            channels = [make_channel() for _ in range(2)]
            small.add(channels[0].reader, READABLE)
            small.add(channels[0].writer, WRITABLE)
            small.add(channels[1].reader, READABLE)
            with pytest.raises(PoolFullError, match=r"\b3\b"):
                small.add(channels[1].writer, WRITABLE)
            assert len(small) == 3 and channels[1].writer not in small
            small.remove(channels[0].writer)
            small.add(channels[1].writer, WRITABLE)
            assert small.cycle(0) == [(channels[1].writer_fd, WRITABLE)]
            for fd in list(small.fds()):
                small.remove(fd)

    @pytest.mark.parametrize("capacity", [0, -1, 1.5, "8", None, True, platform.MAX_CAPACITY + 1, 2**40])
    def test_bad_capacity(self, backend, capacity):
        with pytest.raises(ValueError, match="capacity"):
            new_pool(capacity, backend)

    def test_a_huge_capacity_allocates_nothing_up_front(self, backend):
        # A pool sized to a big fd limit costs only what it watches: poll's
        # array used to be allocated whole (16 GiB for this one).
        start = time.perf_counter()
        with new_pool(platform.MAX_CAPACITY, backend) as pool:
            assert pool.capacity == platform.MAX_CAPACITY and len(pool) == 0
        assert time.perf_counter() - start < 5  # a safety net; the allocation took minutes or failed

    def test_the_pool_grows_to_its_capacity_and_reports_every_fd(self, backend):
        # Past the first block of a growing array, and up to the capacity exactly.
        pairs = [socket.socketpair() for _ in range(150)]
        try:
            with new_pool(len(pairs), backend) as pool:
                for a, _ in pairs:
                    pool.add(a, READABLE)
                with pytest.raises(PoolFullError):
                    pool.add(pairs[0][1], READABLE)
                sent = range(0, len(pairs), 3)
                for i in sent:
                    pairs[i][1].send(b"x")
                ready = sorted(fd for fd, flags in wait_all(pool, len(sent)) if flags & READABLE)
                assert ready == sorted(pairs[i][0].fileno() for i in sent)
                for a, _ in pairs[::2]:  # swap-removes across the grown array
                    pool.remove(a)
                ready = sorted(fd for fd, flags in pool.cycle(0) if flags & READABLE)
                assert ready == sorted(pairs[i][0].fileno() for i in sent if i % 2)
        finally:
            for a, b in pairs:
                a.close()
                b.close()

    @pytest.mark.parametrize(
        "events", [0, ERROR, HANGUP, READABLE | ERROR, WRITABLE | HANGUP, 2, 64, -1, 1 << 40, 1.0, "1", None]
    )
    def test_bad_events(self, pool, channel, events):
        with pytest.raises(ValueError):
            pool.add(channel.reader, events)
        assert channel.reader not in pool
        pool.add(channel.reader, READABLE)
        with pytest.raises(ValueError):
            pool.modify(channel.reader, events)
        assert pool.interest(channel.reader) == READABLE
        pool.remove(channel.reader)

    def test_not_a_file(self, pool):
        closed_socket = socket.socket()
        closed_socket.close()
        for bad in (-1, -100, object(), "3", 3.0, None, closed_socket):
            with pytest.raises(ValueError):
                pool.add(bad, READABLE)
            with pytest.raises(ValueError):
                pool.modify(bad, READABLE)
            with pytest.raises(ValueError):
                pool.remove(bad)
        assert len(pool) == 0

    def test_ebadf_for_a_closed_fd(self, pool):
        if pool.backend == "wsapoll":
            pytest.skip("winsock has no EBADF: test_wsapoll.py checks WSAENOTSOCK for a closed socket")
        fd = closed_fd()
        with pytest.raises(OSError) as caught:
            pool.add(fd, READABLE)
        assert caught.value.errno == errno.EBADF
        assert caught.value.strerror == os.strerror(errno.EBADF)
        assert fd not in pool and len(pool) == 0

    # timeouts and signals

    def test_cycle_zero_does_not_block(self, pool, channel):
        pool.add(channel.reader, READABLE)
        started = time.monotonic()
        assert pool.cycle(0) == []
        assert pool.cycle(-1) == []  # a deadline already past polls too
        assert time.monotonic() - started < PATIENCE / 5
        pool.remove(channel.reader)

    @pytest.mark.parametrize("timeout", [0.05, 0.0301, 0.0004])
    def test_cycle_waits_at_least_the_timeout(self, pool, channel, timeout):
        pool.add(channel.reader, READABLE)
        started = time.monotonic()
        assert pool.cycle(timeout) == []
        elapsed = time.monotonic() - started
        assert timeout <= elapsed < timeout + PATIENCE
        pool.remove(channel.reader)

    def test_an_empty_pool_sleeps(self, pool):
        started = time.monotonic()
        assert pool.cycle(0.03) == []
        assert 0.03 <= time.monotonic() - started < PATIENCE

    @needs_setitimer
    def test_a_signal_neither_raises_nor_shortens_the_wait(self, pool, channel):
        pool.add(channel.reader, READABLE)
        calls = []
        with sigalrm(lambda signum, frame: calls.append(signum), 0.02, 0.02):
            started = time.monotonic()
            assert pool.cycle(0.25) == []
            elapsed = time.monotonic() - started
        assert len(calls) >= 2, "the signal never arrived during the wait"
        assert 0.25 <= elapsed < 0.25 + PATIENCE
        pool.remove(channel.reader)

    @needs_setitimer
    def test_a_signal_does_not_end_a_blocking_wait(self, pool, channel):
        pool.add(channel.reader, READABLE)
        calls = []

        def handler(signum, frame):
            calls.append(signum)
            if len(calls) == 3:
                channel.send(b"wake")

        with sigalrm(handler, 0.02, 0.02):
            assert pool.cycle(None) == [(channel.reader_fd, READABLE)]
        assert len(calls) >= 3
        pool.remove(channel.reader)

    @needs_setitimer
    def test_a_raising_signal_handler_propagates(self, pool, channel):
        class Interrupt(Exception):
            pass

        def handler(signum, frame):
            raise Interrupt

        pool.add(channel.reader, READABLE)
        started = time.monotonic()
        with sigalrm(handler, 0.05):
            with pytest.raises(Interrupt):
                pool.cycle(PATIENCE)
        assert time.monotonic() - started < PATIENCE
        assert pool.cycle(0) == []  # and the pool still works
        pool.remove(channel.reader)

    # closing, statistics, close-on-exec

    def test_use_after_close(self, pool, channel):
        pool.add(channel.reader, READABLE)
        pool.close()
        assert pool.closed and len(pool) == 0 and channel.reader not in pool
        assert channel.reader_is_open()  # registered fds are the caller's: still open
        with pytest.raises(ClosedResourceError):
            pool.add(channel.writer, WRITABLE)
        with pytest.raises(ClosedResourceError):
            pool.modify(channel.reader, WRITABLE)
        with pytest.raises(ClosedResourceError):
            pool.remove(channel.reader)
        with pytest.raises(ClosedResourceError):
            pool.cycle(0)
        pool.close()  # idempotent
        assert pool.closed and pool.statistics().size == 0

    def test_context_manager(self, backend, channel):
        with new_pool(CAPACITY, backend) as pool:
            pool.add(channel.reader, READABLE)
            assert not pool.closed
        assert pool.closed and len(pool) == 0
        with pytest.raises(ClosedResourceError):
            pool.cycle(0)

    def test_statistics(self, pool, backend, channel):
        assert pool.statistics() == PoolStatistics(backend, CAPACITY, 0)
        pool.add(channel.reader, READABLE)
        pool.add(channel.writer, WRITABLE)
        stats = pool.statistics()
        assert (stats.backend, stats.capacity, stats.size) == (backend, CAPACITY, 2)
        assert hash(stats) == hash(PoolStatistics(backend, CAPACITY, 2))
        assert backend in repr(stats) and backend in repr(pool)
        with pytest.raises(AttributeError):
            stats.size = 0
        pool.remove(channel.reader)
        pool.remove(channel.writer)
        assert pool.statistics().size == 0 and stats.size == 2  # a snapshot, not a view

    def test_every_pool_fd_is_close_on_exec(self, backend):
        before = open_fds()
        with new_pool(CAPACITY, backend) as pool:
            opened = open_fds() - before
            own = {pool.fileno()} if hasattr(pool, "fileno") else set()
            assert opened == own
            assert not any(os.get_inheritable(fd) for fd in opened)
            if opened:
                # And really closed across exec, even without close_fds.
                probe = "import os, sys\nfor fd in sys.argv[1:]:\n    os.fstat(int(fd))\n"
                child = subprocess.run(
                    [sys.executable, "-c", probe, *map(str, sorted(opened))],
                    close_fds=False,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    timeout=PATIENCE * 4,
                )
                assert child.returncode != 0 and b"Bad file descriptor" in child.stderr


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs SIGUSR1")
@pytest.mark.parametrize("backend", [b for b in platform.backends() if b != "wsapoll"])
def test_a_poll_that_never_blocks_is_retried_when_a_signal_interrupts_it(backend):
    """cycle(0) let EINTR out: a soak's server died of it, under SIGUSR1 at 1,000/s, with 5,000 fds in poll."""
    import resource
    import threading

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    count = min(3000, soft - 200)
    if count < 500:
        pytest.skip("too few fds to make a scan long enough to be interrupted")
    r, w = os.pipe()
    dups = [os.dup(r) for _ in range(count)]  # a long array: each poll(2) takes a while
    seen = [0]
    previous = signal.signal(signal.SIGUSR1, lambda *_: seen.__setitem__(0, seen[0] + 1))
    stop = threading.Event()

    def pester():
        while not stop.is_set():
            os.kill(os.getpid(), signal.SIGUSR1)

    thread = threading.Thread(target=pester)
    try:
        with new_pool(count, backend) as pool:
            for fd in dups:
                pool.add(fd, READABLE)
            thread.start()
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                assert pool.cycle(0) == []
            for fd in dups:
                pool.remove(fd)
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()
        signal.signal(signal.SIGUSR1, previous)
        for fd in dups + [r, w]:
            os.close(fd)
    assert seen[0] > 0
