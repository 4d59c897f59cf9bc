"""How a running server hears "stop": SIGINT/SIGTERM, or ``Server.shutdown()`` from any thread.

Both arrive as bytes on one socket pair that a fiber of the server reads:
a signal's number, or ``0`` for a shutdown asked for in code.  For
signals the write end is the process's ``signal.set_wakeup_fd``, so
Python's C-level handler writes the number at once -- even when the
signal lands just before the scheduler enters its wait, where a
Python-level handler would only run after the wait ended.  If something
else holds the wake-up fd already (an asyncio loop, or poorio's event
sets listening for signals), that one is left alone and the Python-level
handler writes the byte itself.

Signal handlers can only be installed from the main thread; a server
running in another thread listens for ``shutdown()`` alone.  Everything
installed is put back by ``close()``.
"""

from __future__ import annotations

import signal
import socket
import threading

__all__ = ["StopSignals", "SHUTDOWN"]

SHUTDOWN = 0  # the byte shutdown() writes; signals write their own number
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name))


class StopSignals:
    """A socket pair whose read end a fiber waits on; signals and ``stop()`` write to it."""

    __slots__ = ("reader", "_writer", "_handlers", "_wakeup_fd", "_own_wakeup")

    def __init__(self, handle_signals: bool) -> None:
        self.reader, self._writer = socket.socketpair()  # close-on-exec, as every socket Python makes
        self._writer.setblocking(False)
        self._handlers = {}  # signal number -> the handler ours replaced
        self._wakeup_fd = -1  # the wake-up fd before ours
        self._own_wakeup = False
        if handle_signals and _SIGNALS and threading.current_thread() is threading.main_thread():
            try:
                self._install()
            except BaseException:
                self.close()
                raise

    def _install(self) -> None:
        previous = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        if previous == -1:
            self._own_wakeup = True
        else:  # someone else's: keep it, and write from the Python-level handler instead
            signal.set_wakeup_fd(previous)
        for signum in _SIGNALS:
            self._handlers[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame) -> None:
        if not self._own_wakeup:  # with the wake-up fd ours, the C handler has written the byte
            self._send(signum)

    def stop(self) -> None:
        """Ask the server to shut down gracefully; callable from any thread (and a signal handler)."""
        self._send(SHUTDOWN)

    def _send(self, code: int) -> None:
        try:
            self._writer.send(bytes((code,)))
        except (BlockingIOError, OSError):  # full (enough bytes are waiting) or already closed
            pass

    def close(self) -> None:
        """Put back the handlers and wake-up fd that were there before; close the pair."""
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler)
        self._handlers.clear()
        if self._own_wakeup:
            signal.set_wakeup_fd(self._wakeup_fd)
            self._own_wakeup = False
        self.reader.close()
        self._writer.close()
