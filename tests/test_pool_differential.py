"""poorio's pools against the stdlib's ``select.poll``, over random sequences of real IO.

Each scenario opens two socketpairs and two pipes, registers every end in a
poorio pool and in ``select.poll`` (the oracle) with the same interest, then
plays a random list of steps -- writes, reads, shutdowns, closes (removing
the end from both first), interest changes, unregistering and registering
again -- and after every step compares what the two report, the oracle's
bits translated as poorio documents: POLLIN -> READABLE, POLLOUT ->
WRITABLE, POLLERR -> ERROR, POLLHUP -> HANGUP, POLLNVAL -> ERROR.

The answers must match exactly, except where a backend's mechanism is
documented to say something else -- ``ALLOWED`` states each such difference
and why, per backend.  epoll and poll ask the same kernel as the oracle and
are allowed none.

Buffers are shrunk so a few writes fill them and writability really flips.
"""

from __future__ import annotations

import errno
import os
import socket
import sys

import pytest

select = pytest.importorskip("select")
if not hasattr(select, "poll"):
    pytest.skip("the oracle, select.poll, is missing here", allow_module_level=True)

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import poorio.platform as platform  # noqa: E402
from poorio.platform import ERROR, HANGUP, READABLE, WRITABLE, new_pool  # noqa: E402


SMALL_BUFFER = 16384
# Errors a step may meet because of an earlier step (peer gone, direction shut).
EXPECTED_ERRNOS = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN}
ORACLE_BITS = (
    (select.POLLIN, READABLE),
    (select.POLLOUT, WRITABLE),
    (select.POLLERR, ERROR),
    (select.POLLHUP, HANGUP),
    (select.POLLNVAL, ERROR),
)
TO_ORACLE = {READABLE: select.POLLIN, WRITABLE: select.POLLOUT, READABLE | WRITABLE: select.POLLIN | select.POLLOUT}
INTERESTS = (READABLE, WRITABLE, READABLE | WRITABLE)
PAYLOAD = memoryview(b"x" * 70000)


def _kqueue_end_of_file(expected: int, actual: int) -> bool:
    """kqueue reports a finished direction as EV_EOF, which poorio translates to HANGUP
    (with ERROR on the write filter, where a write would fail with EPIPE) -- see the
    essay in poorio/platform/kqueue.py.  poll(2) sets POLLHUP only when both directions
    are gone, so for a socket after ``shutdown(SHUT_RD)`` (or its peer's SHUT_WR)
    poll says READABLE where kqueue says READABLE | HANGUP, and for a pipe's write end
    whose reader is gone poll says WRITABLE | ERROR (Linux) where kqueue adds HANGUP.
    Allowed: HANGUP and ERROR on top of the same READABLE/WRITABLE readiness, never a
    different readiness, and never an fd one of them reports and the other does not.
    """
    readiness = READABLE | WRITABLE
    return actual & readiness == expected & readiness and expected | HANGUP | ERROR == actual | HANGUP | ERROR


# backend -> the differences from poll(2) its mechanism is documented to have.
ALLOWED = {"kqueue": _kqueue_end_of_file}


def agree(backend: str, expected: list, actual: list) -> bool:
    """Whether a pool's ready list matches the oracle's, up to the differences ``ALLOWED`` for it."""
    if actual == expected:
        return True
    allowed = ALLOWED.get(backend)
    if allowed is None or [fd for fd, _ in actual] != [fd for fd, _ in expected]:
        return False
    return all(allowed(want, got) for (_, want), (_, got) in zip(expected, actual))


def oracle_flags(revents: int) -> int:
    flags = 0
    for bit, ours in ORACLE_BITS:
        if revents & bit:
            flags |= ours
    return flags


class End:
    """One end of a socketpair or pipe, and what the scenario did to it."""

    __slots__ = ("fd", "handle", "readable", "writable", "is_socket", "interest", "registered")

    def __init__(self, handle, readable: bool, writable: bool, interest: int) -> None:
        self.handle = handle
        self.fd = handle if isinstance(handle, int) else handle.fileno()
        self.readable = readable
        self.writable = writable
        self.is_socket = not isinstance(handle, int)
        self.interest = interest
        self.registered = False

    @property
    def is_open(self) -> bool:
        return self.fd >= 0

    def close(self) -> None:
        if self.is_open:
            if self.is_socket:
                self.handle.close()
            else:
                os.close(self.fd)
            self.fd = -1


def open_ends(interests) -> list:
    ends = []
    for _ in range(2):
        left, right = socket.socketpair()
        for sock in (left, right):
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
            ends.append(End(sock, True, True, interests[len(ends)]))
    for _ in range(2):
        reader, writer = os.pipe()
        for fd in (reader, writer):
            os.set_blocking(fd, False)
        if sys.platform.startswith("linux"):
            try:
                import fcntl

                fcntl.fcntl(writer, getattr(fcntl, "F_SETPIPE_SZ", 1031), SMALL_BUFFER)
            except OSError:
                pass  # a bigger pipe only takes more writes to fill
        ends.append(End(reader, True, False, interests[len(ends)]))
        ends.append(End(writer, False, True, interests[len(ends)]))
    return ends


class Scenario:
    """The ends, the pool under test and the oracle, kept registered alike."""

    def __init__(self, pool, ends) -> None:
        self.pool = pool
        self.backend = pool.backend
        self.oracle = select.poll()
        self.ends = ends

    def register(self, end: End) -> None:
        self.pool.add(end.handle, end.interest)
        self.oracle.register(end.fd, TO_ORACLE[end.interest])
        end.registered = True

    def unregister(self, end: End) -> None:
        self.pool.remove(end.handle)
        self.oracle.unregister(end.fd)
        end.registered = False

    def check(self, step) -> None:
        expected = sorted((fd, oracle_flags(revents)) for fd, revents in self.oracle.poll(0))
        actual = sorted(self.pool.cycle(0))
        assert agree(self.backend, expected, actual), f"after {step}: {actual} != {expected}"
        registered = {end.fd: end.interest for end in self.ends if end.registered}
        assert {fd: self.pool.interest(fd) for fd in self.pool.fds()} == registered

    def close(self) -> None:
        """Unregister and close everything -- even after a failed step left a mess."""
        try:
            for end in self.ends:
                if end.registered:
                    self.unregister(end)
        finally:
            for end in self.ends:
                end.close()
            self.pool.close()


# -- the steps: each takes the end it acts on and a number it may use -------------------


def _tolerate(exc: OSError) -> None:
    if exc.errno not in EXPECTED_ERRNOS:
        raise exc


def write(scenario: Scenario, end: End, amount: int) -> None:
    if end.is_open and end.writable:
        try:
            os.write(end.fd, PAYLOAD[:amount])
        except OSError as exc:
            _tolerate(exc)


def read(scenario: Scenario, end: End, amount: int) -> None:
    if end.is_open and end.readable:
        try:
            os.read(end.fd, amount)
        except OSError as exc:
            _tolerate(exc)


def shutdown(scenario: Scenario, end: End, amount: int) -> None:
    if end.is_open and end.is_socket:
        try:
            end.handle.shutdown((socket.SHUT_WR, socket.SHUT_RD, socket.SHUT_RDWR)[amount % 3])
        except OSError as exc:
            _tolerate(exc)


def close(scenario: Scenario, end: End, amount: int) -> None:
    if end.is_open:
        if end.registered:
            scenario.unregister(end)  # remove before close: poorio's rule
        end.close()


def modify(scenario: Scenario, end: End, amount: int) -> None:
    end.interest = INTERESTS[amount % 3]
    if end.registered:
        scenario.pool.modify(end.handle, end.interest)
        scenario.oracle.modify(end.fd, TO_ORACLE[end.interest])


def toggle(scenario: Scenario, end: End, amount: int) -> None:
    """Unregister a registered end; register an unregistered open one again."""
    if end.registered:
        scenario.unregister(end)
    elif end.is_open:
        scenario.register(end)


STEPS = (write, read, shutdown, modify, toggle, close)
step_strategy = st.tuples(st.sampled_from(STEPS), st.integers(0, 7), st.integers(1, len(PAYLOAD)))


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param(name, marks=pytest.mark.skipif(name not in platform.backends(), reason="not usable here"))
        for name in platform.known_backends()
    ],
)
# No explain phase: it traces every line of a failing example, which can take
# minutes here; the shrunk steps and the failing assertion say enough.
@settings(
    max_examples=300,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    interests=st.lists(st.sampled_from(INTERESTS), min_size=8, max_size=8),
    steps=st.lists(step_strategy, min_size=1, max_size=50),
)
def test_pool_agrees_with_select_poll(backend, interests, steps):
    # The fd-leak fixture wraps all examples at once, so each one cleans up itself.
    scenario = Scenario(new_pool(16, backend), open_ends(interests))
    try:
        for end in scenario.ends:
            scenario.register(end)
        scenario.check("registering")
        for number, (step, index, amount) in enumerate(steps):
            step(scenario, scenario.ends[index], amount)
            scenario.check(f"step {number}: {step.__name__}({index}, {amount})")
    finally:
        scenario.close()


def test_the_allowed_differences_are_as_narrow_as_stated():
    """The oracle's allowances accept what they document and nothing more."""
    fd = 5
    assert agree("epoll", [(fd, READABLE)], [(fd, READABLE)])
    assert not agree("epoll", [(fd, READABLE)], [(fd, READABLE | HANGUP)])
    assert agree("kqueue", [(fd, READABLE)], [(fd, READABLE | HANGUP)])  # shutdown(SHUT_RD)
    assert agree("kqueue", [(fd, WRITABLE | ERROR)], [(fd, WRITABLE | HANGUP | ERROR)])  # reader gone
    assert not agree("kqueue", [(fd, READABLE)], [(fd, WRITABLE | HANGUP)])  # another readiness
    assert not agree("kqueue", [(fd, HANGUP)], [(fd, READABLE | HANGUP)])
    assert not agree("kqueue", [], [(fd, HANGUP)])  # an fd only one of them reports
    assert not agree("kqueue", [(fd, READABLE)], [(fd + 1, READABLE)])
