"""Memory facts about the current process, read from the kernel: RSS now and at peak."""

from __future__ import annotations

import os
import platform
import resource

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size now, in bytes (Linux: /proc/<pid>/statm)."""
    with open(f"/proc/{pid or 'self'}/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


def peak_rss_bytes() -> int:
    """The process's peak RSS so far, in bytes (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def tracemalloc_available() -> bool:
    """tracemalloc counts Python's allocations on CPython only."""
    return platform.python_implementation() == "CPython"
