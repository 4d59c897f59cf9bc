"""poorio: zero-dependency, pure-Python event-driven IO.

ctypes bindings to the OS multiplexers (``poorio.platform``), a
LuaEvents-style event set (``poorio.events``), a fiber scheduler with cancel
scopes and groups, Concurrent-ML operations and channels, and IO objects
(streams, sockets, TLS, files, subprocesses).  The names most programs need
are re-exported here; each layer's own module holds the rest.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing

from .errors import *  # noqa: F401,F403
from .errors import __all__ as _errors_all

# Layers are imported bottom-up; ops must be loaded before channel and sync,
# which build their operations on it.
from ._core import current, dump, fibers, notify_closing, room, run, spawn, stats, wait_for_room
from ._core.scheduler import FiberInfo, Scheduler
from ._core.traps import checkpoint, current_scheduler, sleep, sleep_until, wait_readable, wait_writable
from ._core.fiber import Fiber
from ._core.cancel import CancelScope, fail_after, fail_at, move_on_after, move_on_at
from ._core.group import Group, TaskStatus
from .ops import (
    Operation,
    always,
    choice,
    join_op,
    never,
    readable_op,
    sleep_op,
    sleep_until_op,
    timeout_op,
    writable_op,
)
from .channel import Channel, Queue
from .sync import Cond, Event, Lock, Semaphore
from .streams import Stream, pipe

# Sockets, threads, files and subprocesses load on first use: ``socket``
# alone (with the ``enum`` and ``selectors`` it imports) costs more than the
# rest of poorio together, and a fiber program may never open one.  The
# table below is the whole mechanism -- one line per lazily loaded name.
_LAZY = {
    "SocketStream": "net", "Listener": "net", "DatagramSocket": "net", "connect_tcp": "net",
    "listen_tcp": "net", "connect_unix": "net", "listen_unix": "net", "open_udp": "net",
    "getaddrinfo": "net",
    "run_in_thread": "threads",
    "Completion": "completion",
    "serve_tcp": "serve",
    "actors": "actors",
    "open_file": "files",
    "open_process": "process", "run_process": "process", "Process": "process",
    "PIPE": "process", "STDOUT": "process", "DEVNULL": "process",
    "system": "system",
    "from_thread": "from_thread",
}  # fmt: skip

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from . import actors, from_thread, system
    from .completion import Completion
    from .serve import serve_tcp
    from .files import open_file
    from .net import (
        DatagramSocket, Listener, SocketStream, connect_tcp, connect_unix, getaddrinfo, listen_tcp,
        listen_unix, open_udp,
    )  # fmt: skip
    from .process import DEVNULL, PIPE, STDOUT, Process, open_process, run_process
    from .threads import run_in_thread


def __getattr__(name: str):
    """Load a name from ``_LAZY`` on first use (PEP 562); anything else is an AttributeError."""
    try:
        module_name = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'poorio' has no attribute {name!r}") from None
    from importlib import import_module

    module = import_module(f".{module_name}", __name__)
    value = module if name == module_name else getattr(module, name)
    globals()[name] = value  # later lookups never come back here
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = list(_errors_all) + [
    # fibers
    "run", "spawn", "current", "current_scheduler", "Fiber", "Scheduler", "sleep", "sleep_until", "checkpoint",
    "wait_readable", "wait_writable", "notify_closing", "stats", "dump", "fibers", "FiberInfo", "room",
    "wait_for_room",
    # cancellation and structure
    "CancelScope", "move_on_after", "move_on_at", "fail_after", "fail_at", "Group", "TaskStatus",
    # operations
    "Operation", "choice", "always", "never", "sleep_op", "sleep_until_op", "timeout_op",
    "readable_op", "writable_op", "join_op", "Channel", "Queue", "Cond", "Event", "Lock", "Semaphore",
    # IO objects
    "Stream", "pipe", "SocketStream", "Listener", "DatagramSocket", "connect_tcp", "listen_tcp",
    "connect_unix", "listen_unix", "open_udp", "getaddrinfo",
    # threads, files, subprocesses, stdio
    "run_in_thread", "from_thread", "Completion", "actors", "serve_tcp", "open_file", "open_process", "run_process",
    "Process", "PIPE", "STDOUT", "DEVNULL", "system",
]  # fmt: skip
