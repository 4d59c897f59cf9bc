"""What tests must know about where a backend reaches: WSAPoll polls only sockets, and Wine is not Windows.

Probed, not guessed from the OS name, wherever a probe can tell.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import sys

import pytest

from poorio.platform import READABLE, new_pool

# Wine implements WSAPoll and winsock on Linux's sockets: a few answers differ
# from Windows' own (see the tests that ask).
ON_WINE = sys.platform == "win32" and hasattr(ctypes.WinDLL("ntdll"), "wine_get_version")


@functools.lru_cache(maxsize=None)
def takes_pipes(backend: str) -> bool:
    """Whether a pool of ``backend`` accepts a pipe (WSAPoll takes only sockets)."""
    r, w = os.pipe()
    try:
        with new_pool(1, backend) as pool:
            try:
                pool.add(r, READABLE)
            except OSError:
                return False
            pool.remove(r)
            return True
    finally:
        os.close(r)
        os.close(w)


def skip_unless_pipes(backend: str) -> None:
    if not takes_pipes(backend):
        pytest.skip(f"{backend} polls only sockets, not pipes")


def closed_fd_errno(backend: str) -> int:
    """The kernel's errno for a closed fd: EBADF, or WSAPoll's ENOTSOCK (winsock knows only sockets)."""
    return errno.ENOTSOCK if backend == "wsapoll" else errno.EBADF
