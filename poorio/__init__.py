"""poorio: zero-dependency, pure-Python event-driven IO.

ctypes bindings to the OS multiplexers (``poorio.platform``), a
LuaEvents-style event set (``poorio.events``), a fiber scheduler with cancel
scopes and groups, Concurrent-ML operations and channels, and IO objects
(streams, sockets, TLS, files, subprocesses).  The names most programs need
are re-exported here; each layer's own module holds the rest.
"""

from __future__ import annotations

from .errors import *  # noqa: F401,F403
from .errors import __all__ as _errors_all

# Layers are imported bottom-up; ops must be loaded before channel and sync,
# which build their operations on it.
from .scheduler import Scheduler, current, dump, notify_closing, run, spawn, stats
from .traps import checkpoint, sleep, sleep_until, wait_readable, wait_writable
from .fiber import Fiber
from .cancel import CancelScope, fail_after, fail_at, move_on_after, move_on_at
from .group import Group
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
from .net import (
    DatagramSocket,
    Listener,
    SocketStream,
    connect_tcp,
    connect_unix,
    listen_tcp,
    listen_unix,
    getaddrinfo,
    open_udp,
)
from .threads import run_in_thread
from .files import open_file
from .process import DEVNULL, PIPE, STDOUT, Process, open_process, run_process
from . import system

__version__ = "0.1.0"

__all__ = list(_errors_all) + [
    # fibers
    "run", "spawn", "current", "Fiber", "Scheduler", "sleep", "sleep_until", "checkpoint",
    "wait_readable", "wait_writable", "notify_closing", "stats", "dump",
    # cancellation and structure
    "CancelScope", "move_on_after", "move_on_at", "fail_after", "fail_at", "Group",
    # operations
    "Operation", "choice", "always", "never", "sleep_op", "sleep_until_op", "timeout_op",
    "readable_op", "writable_op", "join_op", "Channel", "Queue", "Cond", "Event", "Lock", "Semaphore",
    # IO objects
    "Stream", "pipe", "SocketStream", "Listener", "DatagramSocket", "connect_tcp", "listen_tcp",
    "connect_unix", "listen_unix", "open_udp", "getaddrinfo",
    # threads, files, subprocesses, stdio
    "run_in_thread", "open_file", "open_process", "run_process", "Process", "PIPE", "STDOUT", "DEVNULL",
    "system",
]  # fmt: skip
