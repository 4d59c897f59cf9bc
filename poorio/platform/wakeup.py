"""A wake-up channel: a readable fd any thread or signal handler can poke to end a blocking wait.

An event set keeps the read end in its pool.  ``wake()`` writes one byte to
the write end, which makes the read end readable, which makes the pool's
``cycle`` return; the loop then calls ``drain()`` and looks at whatever
queue the waker was poked for.

Facts that shaped it:

* POSIX uses a pipe: two fds, no socket machinery, and ``os.pipe()`` fds are
  close-on-exec (non-inheritable) by default since Python 3.4.  Windows'
  WSAPoll accepts only sockets, so there it is a connected socket pair.
* Both ends are non-blocking.  A full pipe means the reader has not drained
  yet, so it is already readable: a failed write (``EAGAIN``) is success.
* ``wake()`` runs in other threads and in Python-level signal handlers,
  which run between two bytecodes of the main thread -- possibly in the
  middle of ``close()``.  A *re-entrant* lock keeps another thread from
  writing into an fd number that ``close()`` just released (and that may
  already name someone else's file); ``close()`` marks the waker closed
  before it closes anything, so a handler that re-enters sees the mark.
"""

from __future__ import annotations

import os
import sys
from _thread import RLock

__all__ = ["Waker"]

_WINDOWS = sys.platform == "win32"


class Waker:
    """The two ends of a non-blocking, close-on-exec wake-up channel."""

    __slots__ = ("_rfd", "_wfd", "_lock", "_socks")

    def __init__(self) -> None:
        self._lock = RLock()
        if _WINDOWS:  # pragma: no cover - exercised on Windows only
            import socket

            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            self._socks = (reader, writer)
            self._rfd, self._wfd = reader.fileno(), writer.fileno()
        else:
            self._socks = None
            self._rfd, self._wfd = os.pipe()
            try:
                os.set_blocking(self._rfd, False)
                os.set_blocking(self._wfd, False)
            except OSError:  # pragma: no cover - fcntl does not fail on a fresh pipe
                os.close(self._rfd)
                os.close(self._wfd)
                raise

    def fileno(self) -> int:
        """The read end: register it for READABLE."""
        return self._rfd

    def write_fileno(self) -> int:
        """The write end (for ``signal.set_wakeup_fd`` through a duplicate; do not close it)."""
        return self._wfd

    def wake(self) -> None:
        """Make the read end readable.  Thread-safe and signal-handler-safe; a no-op once closed."""
        with self._lock:
            wfd = self._wfd
            if wfd < 0:
                return
            try:
                if self._socks is None:
                    os.write(wfd, b"\0")
                else:  # pragma: no cover - Windows
                    self._socks[1].send(b"\0")
            except BlockingIOError:
                pass  # the channel is full, so it is already readable

    def drain(self) -> None:
        """Read every pending byte, so the read end stops being readable."""
        rfd = self._rfd
        if rfd < 0:
            return
        try:
            while True:
                if self._socks is None:
                    data = os.read(rfd, 4096)
                else:  # pragma: no cover - Windows
                    data = self._socks[0].recv(4096)
                if len(data) < 4096:
                    return
        except BlockingIOError:
            pass

    def close(self) -> None:
        """Close both ends; idempotent."""
        with self._lock:
            rfd, wfd = self._rfd, self._wfd
            if wfd < 0:
                return
            self._rfd = self._wfd = -1  # first, so a re-entering wake() sees it
            if self._socks is None:
                os.close(rfd)
                os.close(wfd)
            else:  # pragma: no cover - Windows
                for sock in self._socks:
                    sock.close()
                self._socks = None

    @property
    def closed(self) -> bool:
        return self._wfd < 0

    def __repr__(self) -> str:
        return f"<Waker {'closed' if self._wfd < 0 else f'fds {self._rfd}/{self._wfd}'}>"
