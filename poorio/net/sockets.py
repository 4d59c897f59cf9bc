"""What every poorio socket object shares -- options by name, non-blocking set-up, finalizing -- and ``SocketStream`` and name lookups."""

from __future__ import annotations

import socket

from ..platform.facts import SO_NOSIGPIPE
from ..streams import FIBERS, FdStream, WaitHook

__all__ = ["SocketStream", "getaddrinfo"]

# MSG_NOSIGNAL: a send to a dead peer fails with EPIPE instead of killing the
# process with SIGPIPE.  macOS has no such flag but a per-socket option.
_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)

# Emilua's option names -> (level, option).  All are ints or booleans.
_OPTIONS = {
    "reuse_address": (socket.SOL_SOCKET, socket.SO_REUSEADDR),
    "keep_alive": (socket.SOL_SOCKET, socket.SO_KEEPALIVE),
    "broadcast": (socket.SOL_SOCKET, socket.SO_BROADCAST),
    "send_buffer_size": (socket.SOL_SOCKET, socket.SO_SNDBUF),
    "receive_buffer_size": (socket.SOL_SOCKET, socket.SO_RCVBUF),
    "tcp_no_delay": (socket.IPPROTO_TCP, socket.TCP_NODELAY),
}


class _SocketOptions:
    """``set_option``/``get_option`` by name, shared by every socket IO object."""

    __slots__ = ()

    def set_option(self, name: str, value) -> None:
        """Set a socket option by its Emilua name (``"reuse_address"``, ``"tcp_no_delay"``...).

        Raises:
            ValueError: unknown option name.
            OSError: from ``setsockopt``, unmodified.
        """
        level, option = _option(name)
        self._sock.setsockopt(level, option, int(value))

    def get_option(self, name: str) -> int:
        """An option's current value (booleans as 0/1; the kernel may round sizes).

        Raises:
            ValueError: unknown option name.
            OSError: from ``getsockopt``, unmodified.
        """
        level, option = _option(name)
        return self._sock.getsockopt(level, option)

    @property
    def local_address(self):
        """The address the socket is bound to (a ``(host, port)`` tuple, or a path)."""
        return self._sock.getsockname()


def _option(name: str) -> tuple:
    try:
        return _OPTIONS[name]
    except KeyError:
        raise ValueError(f"unknown socket option {name!r}; known: {', '.join(_OPTIONS)}") from None


def _prepare(sock: socket.socket) -> socket.socket:
    """Make ``sock`` non-blocking and SIGPIPE-free (it is close-on-exec from birth)."""
    sock.setblocking(False)
    if SO_NOSIGPIPE is not None and not _SEND_FLAGS:
        sock.setsockopt(socket.SOL_SOCKET, SO_NOSIGPIPE, 1)
    return sock


def _finalize_socket(self) -> None:
    """``__del__`` of the socket objects that are not streams: close a socket nobody closed.

    Its fd may still be registered (kept between waits), so the close is
    handed over to go after the registration (see ``FdWaits.close_later``).
    """
    sock = getattr(self, "_sock", None)
    if sock is not None and sock.fileno() >= 0:
        waits = getattr(self, "_waits", None)
        if waits is None:
            sock.close()
        else:
            waits.close_later(sock.close)


def _close_socket(sock: socket.socket, wait: WaitHook) -> None:
    fd = sock.fileno()
    if fd >= 0:
        try:
            wait.closing(fd)
        finally:
            sock.close()


class SocketStream(_SocketOptions, FdStream):
    """A connected stream socket (TCP or Unix) with the ``poorio.streams`` interface.

    Also: ``send_eof()`` (half-close), ``local_address``/``remote_address``,
    ``nodelay``/``keep_alive`` properties and ``set_option``/``get_option``.
    """

    # _recv and _recv_into are the socket's bound methods, kept in slots (they
    # shadow FdStream's os.read versions): the hot path is one C call.
    __slots__ = ("_sock", "_recv", "_recv_into")

    def __init__(self, sock: socket.socket, *, wait: WaitHook | None = None) -> None:
        self._sock = _prepare(sock)
        self._init_fd(sock.fileno(), wait)
        self._recv = sock.recv
        self._recv_into = sock.recv_into

    def _send(self, data) -> int:
        return self._sock.send(data, _SEND_FLAGS)

    def _close_fd(self, fd: int) -> None:
        self._sock.close()

    def __del__(self) -> None:
        sock = getattr(self, "_sock", None)
        if sock is not None:
            fd = getattr(self, "_fd", -1)
            if fd >= 0:
                self._finalize(fd, sock.close)  # its fd may still be registered
            else:
                sock.close()

    async def send_eof(self) -> None:
        """Half-close: tell the peer no more data will come (``shutdown(SHUT_WR)``); reading goes on.

        Raises:
            ClosedResourceError: the stream is closed.
            BrokenResourceError: a ``write_all`` was interrupted part-way.
            OSError: from ``shutdown``, unmodified (e.g. ``ENOTCONN``).
        """
        await self._fair()
        self._check_writable()
        self._sock.shutdown(socket.SHUT_WR)

    @property
    def remote_address(self):
        """The peer's address (a ``(host, port)`` tuple, or a path for Unix sockets)."""
        return self._sock.getpeername()

    @property
    def nodelay(self) -> bool:
        """``TCP_NODELAY``: send small writes at once (on by default for TCP)."""
        return bool(self.get_option("tcp_no_delay"))

    @nodelay.setter
    def nodelay(self, value: bool) -> None:
        self.set_option("tcp_no_delay", value)

    @property
    def keep_alive(self) -> bool:
        """``SO_KEEPALIVE``: probe an idle connection."""
        return bool(self.get_option("keep_alive"))

    @keep_alive.setter
    def keep_alive(self, value: bool) -> None:
        self.set_option("keep_alive", value)


# -- names and connections -----------------------------------------------------------


async def getaddrinfo(host, port, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0, *, wait: WaitHook | None = None) -> list:
    """``socket.getaddrinfo`` that does not block the scheduler.

    Numeric hosts (and ``None``) are parsed in place (``AI_NUMERICHOST``
    never touches the network).  Names are looked up in a worker thread:
    ``poorio.threads`` when it is installed, else a thread of their own; a
    cancelled caller stops waiting at once (the lookup finishes unseen).
    With a blocking wait hook the lookup simply blocks.

    Raises:
        socket.gaierror: from the resolver, unmodified.
        TypeError: ``port`` is not an int, a string or None.
        ValueError: ``port`` is an int outside 0..65535 (the resolver would wrap it: 70000 -> 4464).
        Cancelled: the fiber was cancelled while the name was looked up.
    """
    _check_port(port)
    try:
        return socket.getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
    except socket.gaierror as error:
        if error.errno != socket.EAI_NONAME or host is None:
            raise
    if wait is not None and wait is not FIBERS:
        return socket.getaddrinfo(host, port, family, type, proto, flags)
    return await _in_thread(socket.getaddrinfo, host, port, family, type, proto, flags)


def _check_port(port) -> None:
    """A port is an int from 0 to 65535, a service name or numeric string, or None."""
    if port is None or isinstance(port, (str, bytes)):
        return
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int from 0 to 65535 or a service name, not {port!r}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be from 0 to 65535, not {port!r}")


async def _in_thread(fn, *args):
    """``fn(*args)`` in poorio's worker pool; the caller may stop waiting at any time."""
    from ..threads import run_in_thread  # threads pulls in threading: only when a name is looked up

    return await run_in_thread(fn, *args, cancellable=True)
