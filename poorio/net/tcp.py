"""TCP and Unix stream sockets: ``Listener`` and the functions that connect and listen."""

from __future__ import annotations

import errno
import logging
import os
import socket

from ..errors import ClosedResourceError
from ..platform.facts import CONNECT_CHECK_INTERVAL, REUSE_ADDRESS_IS_SAFE
from ..streams import FIBERS, WaitHook
from .sockets import SocketStream, _close_socket, _finalize_socket, _prepare, _SocketOptions, getaddrinfo

__all__ = ["Listener", "connect_tcp", "listen_tcp", "connect_unix", "listen_unix"]

# A non-blocking TCP connect "in progress" (Windows says WSAEWOULDBLOCK).  A
# Unix-socket connect answers EAGAIN instead when the listener's backlog is
# full: nothing started, so it is retried after a pause.
_IN_PROGRESS = {errno.EINPROGRESS, getattr(errno, "WSAEWOULDBLOCK", errno.EINPROGRESS)}
# accept() errors that mean "out of resources now", not "this connection failed":
# retrying at once would spin, so the listener backs off instead.
_ACCEPT_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_BACKOFF_FIRST, _BACKOFF_MAX = 0.01, 1.0  # seconds
_DEFAULT_BACKLOG = 128
_ACCEPT_BATCH = 16  # connections accepted in a row before the listener lets the other fibers run
# Loaded with this module, not where it is used: the warnings are logged when
# accept() has just failed with EMFILE, and an import then needs an fd too.
_log = logging.getLogger("poorio.net")


class Listener(_SocketOptions):
    """A listening socket: ``await accept()`` returns a ``SocketStream``.

    ``accept`` never takes a server down for want of resources:

    * under ``EMFILE``/``ENFILE`` (no fds left) it does not spin: it logs a
      warning, sleeps a growing delay (up to 1 s) and retries;
    * when the scheduler's pool is full it stops accepting until a slot
      frees (``Scheduler.wait_for_room``), and says so once in the log, so
      no accepted connection fails its first read with ``PoolFullError``;
    * with connections queued it lets the other fibers run every 16
      accepts, so the handlers of the ones accepted start (and close)
      while a flood is still arriving.
    """

    __slots__ = ("_sock", "_wait", "_waits", "_unlink", "_nodelay", "_streak", "_told_full")

    def __init__(self, sock: socket.socket, *, wait: WaitHook | None = None, nodelay: bool = False) -> None:
        self._sock = _prepare(sock)
        self._wait = FIBERS if wait is None else wait
        self._waits = self._wait.waits(sock.fileno())
        self._unlink = None  # (path, device, inode) of a Unix socket file to remove on close
        self._nodelay = nodelay
        self._streak = 0  # connections accepted since the listener last let other fibers run
        self._told_full = False  # the log has heard that a full pool held accepting back

    async def accept(self) -> SocketStream:
        """The next incoming connection, as a ``SocketStream``.

        Raises:
            ClosedResourceError: the listener is closed, or was closed while waiting.
            OSError: from ``accept``, unmodified (exhaustion errors are retried).
            Cancelled: the fiber was cancelled while it waited.
        """
        sock = self._sock
        wait = self._wait
        delay = _BACKOFF_FIRST
        if self._streak >= _ACCEPT_BATCH:
            self._streak = 0
            await wait.checkpoint()
        while True:
            fd = sock.fileno()
            if fd < 0:
                raise ClosedResourceError("the listener is closed")
            # Room for the new connection, for this listener's own next wait,
            # and for the connections accepted since the other fibers last ran
            # (their handlers may not have waited, and so registered, yet).
            if wait.room() < 2 + self._streak:
                if self._streak:  # let those handlers run (and register) first, then count again
                    self._streak = 0
                    await wait.checkpoint()
                else:
                    self._hold_back()
                    await wait.wait_for_room(2)
                continue
            try:
                conn, _ = sock.accept()  # accept4(SOCK_CLOEXEC) where the OS has it
            except BlockingIOError:
                self._streak = 0
                await self._waits.readable
                if self._sock.fileno() < 0:
                    raise ClosedResourceError("the listener was closed") from None
            except OSError as error:
                if error.errno not in _ACCEPT_EXHAUSTED:
                    raise
                _log.warning("accept() on %r failed: %s; retrying in %.2f s", self.local_address, error, delay)
                self._streak = 0
                await wait.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
            else:
                try:
                    stream = SocketStream(conn, wait=wait)
                    if self._nodelay:
                        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except BaseException:
                    conn.close()
                    raise
                self._streak += 1
                return stream

    def _hold_back(self) -> None:
        """Say once, per listener, that a full pool holds accepting back."""
        if not self._told_full:
            self._told_full = True
            _log.warning(
                "accept() on %r paused: the scheduler's pool is full; accepting again as connections "
                "close (logged once per listener)", self.local_address
            )

    __del__ = _finalize_socket

    @property
    def reuse_address(self) -> bool:
        """``SO_REUSEADDR`` as set before binding (``listen_tcp`` sets it on POSIX)."""
        return bool(self.get_option("reuse_address"))

    @property
    def closed(self) -> bool:
        return self._sock.fileno() < 0

    def fileno(self) -> int:
        """The fd, for interop; do not accept on it yourself."""
        return self._sock.fileno()

    def close(self) -> None:
        """Stop listening; a fiber waiting in ``accept`` wakes with ``ClosedResourceError``."""
        _close_socket(self._sock, self._wait)
        unlink, self._unlink = self._unlink, None
        if unlink is not None:
            path, dev, ino = unlink
            try:
                st = os.stat(path)
                if (st.st_dev, st.st_ino) == (dev, ino):  # still ours, not a newer listener's
                    os.unlink(path)
            except OSError:
                pass

    async def aclose(self) -> None:
        """Close the listener (see ``close``)."""
        self.close()

    async def __aenter__(self) -> Listener:
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Listener fd={self._sock.fileno()}>"


async def _connect(stream: SocketStream, address, wait: WaitHook, unix: bool = False) -> None:
    sock = stream._sock
    delay = _BACKOFF_FIRST
    while True:
        err = sock.connect_ex(address)
        if err in _IN_PROGRESS:
            err = await _connect_finished(sock, stream.fileno(), wait)
        elif unix and err == errno.EAGAIN:
            await wait.sleep(delay)
            delay = min(delay * 2, _BACKOFF_MAX)
            continue
        if err:
            raise OSError(err, os.strerror(err))  # OSError picks the subclass: ConnectionRefusedError...
        return


async def _connect_finished(sock: socket.socket, fd: int, wait: WaitHook) -> int:
    """Wait until a non-blocking connect has ended; its errno, 0 for success.

    Writability says it ended everywhere but on Windows before 10 version
    2004, where a *failed* connect never shows in WSAPoll: there the wait is
    sliced, and ``SO_ERROR`` read after each slice.  Reading ``SO_ERROR``
    clears it, so the error found is returned, not read again.
    """
    interval = CONNECT_CHECK_INTERVAL
    if interval is None:
        await wait.writable(fd)
    else:
        while not await wait.writable_within(fd, interval):
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                return err
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)


async def connect_tcp(host, port: int, *, nodelay: bool = True, wait: WaitHook | None = None) -> SocketStream:
    """A ``SocketStream`` connected to ``host``:``port``.

    The addresses ``getaddrinfo`` returns are tried in its order, one at a
    time; the first that connects wins.  Time it out with a cancel scope::

        with poorio.fail_after(5):
            stream = await poorio.connect_tcp("example.org", 80)

    Raises:
        OSError: the last address's error, unmodified (``ConnectionRefusedError``...).
        socket.gaierror: the name did not resolve.
        TypeError, ValueError: ``port`` is not an int from 0 to 65535 (or a service name).
        Cancelled: the fiber was cancelled (no socket is left open).
    """
    wait = FIBERS if wait is None else wait
    infos = await getaddrinfo(host, port, 0, socket.SOCK_STREAM, wait=wait)
    last = None
    for family, kind, proto, _, address in infos:
        try:
            stream = SocketStream(socket.socket(family, kind, proto), wait=wait)
        except OSError as error:  # e.g. EAFNOSUPPORT: no IPv6 here
            last = error
            continue
        try:
            await _connect(stream, address, wait)
            if nodelay:
                stream.nodelay = True
        except OSError as error:
            stream.close()
            last = error
            continue
        except BaseException:
            stream.close()
            raise
        return stream
    raise last


async def listen_tcp(host, port: int, *, backlog: int = _DEFAULT_BACKLOG, reuse_address: bool = True,
                     nodelay: bool = True, wait: WaitHook | None = None) -> Listener:
    """A ``Listener`` bound to the first address ``getaddrinfo(host, port)`` gives.

    ``host=None`` means every interface; ``port=0`` lets the kernel choose
    (read it from ``local_address``).  ``reuse_address`` sets
    ``SO_REUSEADDR`` (not on Windows, where it would let others steal the
    port); accepted streams get ``TCP_NODELAY`` when ``nodelay``.

    Raises:
        OSError: from ``socket``/``bind``/``listen``, unmodified (``EADDRINUSE``...).
        socket.gaierror: the name did not resolve.
        TypeError, ValueError: ``port`` is not an int from 0 to 65535 (or a service name).
    """
    infos = await getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE, wait=wait)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if reuse_address and REUSE_ADDRESS_IS_SAFE:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
        return Listener(sock, wait=wait, nodelay=nodelay)
    except BaseException:
        sock.close()
        raise


async def connect_unix(path, *, wait: WaitHook | None = None) -> SocketStream:
    """A ``SocketStream`` connected to the Unix socket at ``path``.

    Raises:
        OSError: unmodified (``FileNotFoundError``, ``ConnectionRefusedError``...).
        Cancelled: the fiber was cancelled (no socket is left open).
    """
    wait = FIBERS if wait is None else wait
    stream = SocketStream(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), wait=wait)
    try:
        await _connect(stream, os.fspath(path), wait, unix=True)
    except BaseException:
        stream.close()
        raise
    return stream


async def listen_unix(path, *, backlog: int = _DEFAULT_BACKLOG, wait: WaitHook | None = None) -> Listener:
    """A ``Listener`` on a new Unix socket file at ``path``, removed again on close.

    An existing file is an error, not silently replaced.

    Raises:
        OSError: from ``bind``/``listen``, unmodified (``EADDRINUSE``...).
    """
    path = os.fspath(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        st = os.stat(path)
        sock.listen(backlog)
        listener = Listener(sock, wait=wait)
    except BaseException:
        sock.close()
        raise
    listener._unlink = (path, st.st_dev, st.st_ino)
    return listener
