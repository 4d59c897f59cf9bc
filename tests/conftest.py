"""Shared fixtures: every test runs under one hang guard and must leave no fd open behind it."""

from __future__ import annotations

import gc
import os
import platform
import socket
import sys

import pytest
from _hang_guard import hang_guard as _guard

try:
    from hypothesis import HealthCheck, settings

    # No example database: it would keep files open and write into the checkout.
    settings.register_profile(
        "poorio", database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.load_profile("poorio")
except ImportError:  # pragma: no cover - hypothesis is a test extra
    pass


# A hung test ends its worker with every thread's traceback on the real stderr.
# Generous, so a slow but correct test on a loaded CI machine never trips it;
# faulthandler has one timer per process, so this is the only guard (a guard
# inside a test would cancel it).
HANG_LIMIT = 120.0 if platform.python_implementation() == "PyPy" else 60.0


@pytest.fixture(autouse=True)
def hang_guard(request):
    """Exit the test process, printing where every thread was, if a test runs past ``HANG_LIMIT``."""
    with _guard(request.config, HANG_LIMIT):
        yield


def open_fds() -> set:
    """The fds this process has open right now."""
    if sys.platform.startswith("linux"):
        return {int(name) for name in os.listdir("/proc/self/fd")}
    if sys.platform == "darwin" or "bsd" in sys.platform:
        return {int(name) for name in os.listdir("/dev/fd")}
    # Elsewhere no cheap way to list them: on Windows a SOCKET is a handle, not
    # an fd, and nothing lists a process's handles by kind.  The check is off there.
    return set()  # pragma: no cover


def _describe(fd: int) -> str:
    try:
        return f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}"
    except OSError:
        return str(fd)


@pytest.fixture(autouse=True)
def no_fd_leaks(request):
    """Fail any test that leaves an fd open that was not open before it."""
    before = open_fds()
    yield
    leaked = open_fds() - before
    if leaked:
        gc.collect()  # an fd held only by a reference cycle is closed by a collection...
        leaked = open_fds() - before
    if leaked:  # ...anything still open is a real leak
        pytest.fail(
            "test leaked fds: " + ", ".join(_describe(fd) for fd in sorted(leaked)), pytrace=False
        )


@pytest.fixture
def pair():
    """A connected pair of non-blocking sockets, closed after the test."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()
