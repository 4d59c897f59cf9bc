"""UDP: ``DatagramSocket`` and ``open_udp``, one syscall per datagram."""

from __future__ import annotations

import socket

from ..errors import ClosedResourceError
from ..streams import FIBERS, WaitHook
from .sockets import _SEND_FLAGS, _close_socket, _finalize_socket, _prepare, _SocketOptions, getaddrinfo

__all__ = ["DatagramSocket", "open_udp"]


class DatagramSocket(_SocketOptions):
    """A UDP socket: ``send_to(data, address)`` and ``receive_from(max_size)``, one syscall each."""

    __slots__ = ("_sock", "_wait", "_waits")

    def __init__(self, sock: socket.socket, *, wait: WaitHook | None = None) -> None:
        self._sock = _prepare(sock)
        self._wait = FIBERS if wait is None else wait
        self._waits = self._wait.waits(sock.fileno())

    async def send_to(self, data, address) -> int:
        """Send one datagram to ``address`` (a numeric ``(host, port)``); return the bytes sent.

        Raises:
            ClosedResourceError: the socket is closed, or was closed while waiting.
            OSError: from ``sendto``, unmodified (e.g. ``EMSGSIZE``).
            Cancelled: the fiber was cancelled while it waited.
        """
        self._open()
        while True:
            try:
                return self._sock.sendto(data, _SEND_FLAGS, address)
            except BlockingIOError:
                await self._waits.writable
                self._open()

    async def receive_from(self, max_size: int = 65536) -> tuple:
        """One datagram as ``(data, address)``; a longer datagram is truncated to ``max_size``.

        Raises:
            ClosedResourceError, OSError, Cancelled: as ``send_to``.
        """
        self._open()
        while True:
            try:
                return self._sock.recvfrom(max_size)
            except BlockingIOError:
                await self._waits.readable
                self._open()

    __del__ = _finalize_socket

    def _open(self) -> int:
        fd = self._sock.fileno()
        if fd < 0:
            raise ClosedResourceError("the datagram socket is closed")
        return fd

    def close(self) -> None:
        """Close the socket; waiting fibers wake with ``ClosedResourceError``."""
        _close_socket(self._sock, self._wait)

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> DatagramSocket:
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.close()


async def open_udp(host=None, port: int = 0, *, family: int = 0, wait: WaitHook | None = None) -> DatagramSocket:
    """A ``DatagramSocket`` bound to ``host``:``port`` (default: every interface, a port the kernel picks).

    Raises:
        OSError: from ``socket``/``bind``, unmodified.
        socket.gaierror: the name did not resolve.
        TypeError, ValueError: ``port`` is not an int from 0 to 65535 (or a service name).
    """
    infos = await getaddrinfo(host, port, family, socket.SOCK_DGRAM, 0, socket.AI_PASSIVE, wait=wait)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.bind(address)
        return DatagramSocket(sock, wait=wait)
    except BaseException:
        sock.close()
        raise
