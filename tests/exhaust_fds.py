"""What the out-of-fds tests' child processes share: using up every fd a process may open.

The children import it from the tests folder (they get the checkout's root
as ``sys.argv[1]``), so it needs nothing but the standard library.
"""

from __future__ import annotations

import os
import resource


def exhaust_fds(limit: int = 64) -> list:
    """Lower the soft fd limit to ``limit`` and open fds until ``EMFILE``; return them for ``give_back``."""
    global _limits
    _limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, _limits[1]))
    hogs = []
    try:
        while True:
            hogs.append(os.dup(0))
    except OSError:
        pass  # EMFILE: not one fd left
    return hogs


def give_back(hogs: list) -> None:
    """Close the fds ``exhaust_fds`` opened and put the fd limit back as it was."""
    for fd in hogs:
        os.close(fd)
    resource.setrlimit(resource.RLIMIT_NOFILE, _limits)


_limits = None  # (soft, hard) as they were before exhaust_fds
