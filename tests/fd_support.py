"""Listing this process's fds, for the leak fixture (conftest.py) and the close-on-exec test (test_pool.py)."""

from __future__ import annotations

import os
import sys


def open_fds() -> set | None:
    """The fds this process has open right now; None where they cannot be listed.

    Windows has no fd table to list: a SOCKET is a handle, and nothing lists
    a process's handles by kind (under Wine, /proc/self/fd would be the
    host's table).
    """
    if sys.platform.startswith("linux"):
        listing = os.listdir("/proc/self/fd")
    elif sys.platform == "darwin" or "bsd" in sys.platform:
        listing = os.listdir("/dev/fd")
    else:
        return None  # pragma: no cover
    # The listing names the directory fd it read through, closed by now.  It
    # takes the lowest free number: if a test opened an fd there, the new
    # fd hid behind the first listing's number and the second listing's own
    # number looked leaked (unnameable).  Kept only if still open, so the
    # real fd is named.
    return {fd for fd in map(int, listing) if is_open(fd)}


def is_open(fd: int) -> bool:
    """Whether ``fd`` names an open file (``fstat`` succeeds)."""
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
