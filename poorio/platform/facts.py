"""What the layers above need to know about this OS, named by what it means.

Nothing above ``poorio/platform/`` asks which OS it runs on (a test checks
the source for it); where behaviour must differ, it asks one of these
instead, so the reason travels with the difference.
"""

from __future__ import annotations

import socket
import sys

__all__ = [
    "POLLS_PIPES", "SIGNAL_WAKEUP_BY_DUP", "REUSE_ADDRESS_IS_SAFE", "SO_NOSIGPIPE", "CONNECT_CHECK_INTERVAL",
    "SOCKETS_PASS_BY_FD", "REUSE_PORT_BALANCES", "PIPES_ARE_OPERATIONS",
]

_WINDOWS = sys.platform == "win32"

#: The pools wait on any fd -- pipes, FIFOs, ttys -- not just sockets.  False
#: under WSAPoll, which takes sockets only: inherited stdio is then served by
#: a worker thread.
POLLS_PIPES: bool = not _WINDOWS

#: Where the pools cannot wait on pipes, poorio's own pipes (``streams.pipe``,
#: a child's ``PIPE``) are overlapped ones, read and written as operations
#: of the scheduler's completion port (``streams.ProactorStream``).
PIPES_ARE_OPERATIONS: bool = _WINDOWS

#: ``signal.set_wakeup_fd`` can be handed a duplicate of a ``Waker``'s write
#: end.  False on Windows, where the waker is a socket pair that ``os.dup``
#: cannot copy; a Ctrl-C still ends a wait there, because WSAPoll waits in
#: short slices.
SIGNAL_WAKEUP_BY_DUP: bool = not _WINDOWS

#: ``SO_REUSEADDR`` only lets a listener rebind a port in TIME_WAIT.  On
#: Windows it lets another socket steal a port in active use, so poorio does
#: not set it there.
REUSE_ADDRESS_IS_SAFE: bool = not _WINDOWS

#: Seconds between ``SO_ERROR`` checks while a non-blocking connect is
#: pending, or ``None`` where readiness always reports its end.  Windows
#: before 10 version 2004 never reports a *failed* connect to WSAPoll (see
#: the essay in ``wsapoll.py``); later versions, and Wine, do, and pay only
#: a wake-up per interval while a connect is slow.
CONNECT_CHECK_INTERVAL: float | None = 0.5 if _WINDOWS else None

#: The socket option that turns SIGPIPE into EPIPE per socket, where the
#: ``MSG_NOSIGNAL`` send flag is missing (macOS); ``None`` where there is none.
#: Python's ``socket`` module does not export it on every version that has it.
SO_NOSIGPIPE: int | None = getattr(socket, "SO_NOSIGPIPE", 0x1022 if sys.platform == "darwin" else None)

#: A child process can be handed a socket by its fd number (``pass_fds``).
#: False on Windows, where a socket is a handle that reaches a child through
#: ``socket.share(pid)`` and ``socket.fromshare(data)`` instead.
SOCKETS_PASS_BY_FD: bool = not _WINDOWS

#: Several listening sockets may bind one TCP port with ``SO_REUSEPORT`` and
#: the kernel spreads incoming connections over them (Linux 3.9+).  On macOS
#: and the BSDs the option lets them bind, but the kernel hands every
#: connection to one of them (FreeBSD's balancing option is another,
#: ``SO_REUSEPORT_LB``); Windows has no such option.  Where False, worker
#: processes share one inherited listener instead.
REUSE_PORT_BALANCES: bool = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
