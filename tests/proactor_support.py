"""What the proactor contract tests need per backend: the ring, and pipes and files it can use.

io_uring takes any fd; IOCP takes handles opened for overlapped IO and
associated with its port, which ``os.pipe()`` and ``os.open()`` are not --
so each backend says how to make a pipe and a file its proactor can use,
and how to close them.
"""

from __future__ import annotations

import os
import sys

import pytest

WINDOWS = sys.platform == "win32"


class UringKit:
    name = "uring"

    def __init__(self) -> None:
        from poorio.platform import uring

        reason = uring.unavailable_reason()
        if reason:
            pytest.skip(f"io_uring is not usable here: {reason}")
        self.module = uring

    def ring(self, capacity: int = 16):
        return self.module.Ring(capacity)

    def pipe(self) -> tuple:
        return os.pipe()

    def open_file(self, path: str, write: bool = False) -> int:
        flags = os.O_RDWR | os.O_CREAT if write else os.O_RDONLY
        return os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o600)

    def close(self, ring, handle: int) -> None:
        ring.forget(handle)
        os.close(handle)


class IocpKit(UringKit):
    name = "iocp"

    def __init__(self) -> None:
        from poorio.platform import iocp

        if not iocp.available():
            pytest.skip("IOCP is Windows' (run tests/matrix/wine.sh)")
        self.module = iocp

    def ring(self, capacity: int = 16):
        return self.module.Port(capacity)

    def pipe(self) -> tuple:
        return self.module.pipe()

    def open_file(self, path: str, write: bool = False) -> int:
        return self.module.open_file(path, write=write)

    def close(self, ring, handle: int) -> None:
        ring.forget(handle)
        self.module.close_handle(handle)


KITS = {"uring": UringKit, "iocp": IocpKit}
