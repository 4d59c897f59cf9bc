"""poorio's platform layer: one module per OS multiplexer, all with the same shape.

Nothing OS-specific lives above this package.  Each mechanism module
(``epoll``, ``poll``; ``kqueue`` and ``wsapoll`` where they run) binds its
syscalls through ctypes and exports:

``available() -> bool``
    whether the mechanism works here (probed, not guessed from the OS name);
``SocketIoPool(capacity)``
    a fixed-capacity, level-triggered interest set:

    * ``add(fd, events)`` -- ``fd`` an int or an object with ``fileno()``;
      ``events`` a combination of ``READABLE`` and ``WRITABLE``.  Raises
      ``PoolFullError`` when ``capacity`` fds are registered,
      ``AlreadyRegisteredError`` for a duplicate, ``OSError`` (real errno,
      e.g. ``EBADF``) when the kernel refuses the fd;
    * ``modify(fd, events)``; ``remove(fd)`` (also fine after the fd was
      closed); both raise ``NotRegisteredError`` for an unknown fd;
    * ``cycle(timeout) -> [(fd, flags), ...]`` -- ``timeout`` in seconds,
      ``None`` to block, ``0`` to poll; rounded *up* to the kernel's
      resolution; resumed after a signal (PEP 475).  ``flags`` combine
      ``READABLE``, ``WRITABLE``, ``ERROR`` and ``HANGUP`` (the last two are
      reported whether asked for or not);
    * ``len(pool)``, ``fd in pool``, ``statistics()``, ``close()``, and use
      as a context manager.

The backend is chosen here, in one place: the first usable entry of
``_RANKED`` that is not opt-in -- or the one named by the ``POORIO_BACKEND``
environment variable, which is how CI exercises the portable ``poll``
backend on Linux.  ``uring`` (io_uring, whose module also holds a proactor,
``uring.Ring``, which its pool shares as ``pool.proactor``) is opt-in: its
pool rebuilds level triggering from one-shot polls, which the echo
benchmark measures slower than epoll, so it is chosen only when forced.
What it adds -- the scheduler's proactor path, which files use -- is worth
forcing it for file-heavy programs (``benchmarks/bench_files.py``).
"""

from __future__ import annotations

import os
import sys

from ..errors import BackendUnavailableError
from ._base import (
    DEFAULT_CAPACITY, ERROR, HANGUP, INTEREST, MAX_CAPACITY, READABLE, WRITABLE, PoolStatistics, SocketIoPool,
    check_capacity, default_capacity, fd_is_gone, open_pools,
)  # fmt: skip
from ._libc import MULTIARCH, POINTER_SIZE, fileno

__all__ = [
    "READABLE",
    "WRITABLE",
    "ERROR",
    "HANGUP",
    "INTEREST",
    "DEFAULT_CAPACITY",
    "MAX_CAPACITY",
    "default_capacity",
    "check_capacity",
    "open_pools",
    "SocketIoPool",
    "PoolStatistics",
    "backends",
    "known_backends",
    "default_backend",
    "backend_module",
    "new_pool",
    "relayed_proactor",
    "file_operand",
    "fileno",
    "fd_is_gone",
    "MULTIARCH",
    "POINTER_SIZE",
]

# Best first.  Each name is a module in this package with available().
_RANKED = ("epoll", "kqueue", "wsapoll", "poll", "uring")
# Usable only when named by POORIO_BACKEND (or new_pool(backend=...)).
_OPT_IN = frozenset({"uring"})
_MODULES = {}


def known_backends() -> tuple:
    """Every backend poorio knows, usable here or not, best first."""
    return _RANKED


def _load(name: str):
    module = _MODULES.get(name)
    if module is None:
        import importlib

        module = importlib.import_module(f"{__name__}.{name}")
        _MODULES[name] = module
    return module


def _usable(name: str) -> bool:
    try:
        return bool(_load(name).available())
    except (ImportError, OSError, AttributeError):
        return False


def backends() -> list:
    """The backends usable on this machine, best first."""
    return [name for name in _RANKED if _usable(name)]


def backend_module(name: str | None = None):
    """The mechanism module for ``name`` (default: the chosen backend).

    Raises:
        BackendUnavailableError: ``name`` is unknown or cannot run here; the
            message names the backends that can.
    """
    if name is None:
        name = default_backend()
    if name not in _RANKED:
        raise BackendUnavailableError(f"unknown backend {name!r}; poorio knows {', '.join(_RANKED)}")
    if not _usable(name):
        raise BackendUnavailableError(
            f"backend {name!r} is not usable here; usable: {', '.join(backends()) or 'none'}"
        )
    return _load(name)


_default = None


def default_backend() -> str:
    """The backend poorio uses unless told otherwise (``POORIO_BACKEND`` wins)."""
    global _default
    if _default is None:
        forced = os.environ.get("POORIO_BACKEND")
        if forced:
            backend_module(forced)  # raises a clear error naming the choices
            _default = forced
        else:
            for name in _RANKED:
                if name not in _OPT_IN and _usable(name):
                    _default = name
                    break
            else:
                raise BackendUnavailableError(f"no readiness backend works on this system ({sys.platform})")
    return _default


def new_pool(capacity: int = DEFAULT_CAPACITY, backend: str | None = None) -> SocketIoPool:
    """A new ``SocketIoPool`` of the named backend, or of the default one."""
    return backend_module(backend).SocketIoPool(capacity)


def relayed_proactor(capacity: int, wake):
    """A proactor for a pool that has none: IOCP beside WSAPoll on Windows, else None.

    Its completions do not wake the pool's wait, so a thread of its own
    waits on it and calls ``wake()`` (thread-safe) after each batch; the
    owner takes them with ``completions()``.  See ``iocp.Port.relay``.
    """
    if sys.platform != "win32":
        return None
    from . import iocp

    if not iocp.available():  # pragma: no cover - Windows without kernel32 does not exist
        return None
    port = iocp.Port(capacity)
    port.relay(wake)
    return port


def file_operand(fd: int, write: bool) -> tuple:
    """How a proactor operation reaches file ``fd``: (what it is handed, a release to call after, or None, positioned).

    POSIX: the fd itself, nothing to release, and offset -1 means the fd's
    position (io_uring).  Windows: an overlapped twin of the fd's handle
    (``iocp.reopen_overlapped``) for this one operation -- IOCP takes only
    overlapped handles, and ``open()`` makes synchronous ones -- released
    with ``close_handle``; an overlapped file has no position, so
    ``positioned`` is False and the caller names the offset.
    """
    if sys.platform != "win32":
        return fd, None, True
    from . import iocp

    return iocp.reopen_overlapped(fd, write), iocp.close_handle, False
