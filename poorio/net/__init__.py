"""Networking IO objects: TCP and Unix stream sockets, listeners, UDP sockets (this package holds them).

``connect_tcp``/``connect_unix`` return a ``SocketStream`` (the stream
interface of ``poorio.streams`` over a socket); ``listen_tcp``/``listen_unix``
return a ``Listener`` whose ``accept()`` does; ``open_udp`` returns a
``DatagramSocket``.  Every socket is non-blocking and close-on-exec.  Socket
options go by Emilua's names (``set_option("reuse_address", True)``).

Errors from the kernel pass through unmodified: a refused connect raises
``ConnectionRefusedError`` (``ECONNREFUSED``), a reset peer
``ConnectionResetError``.  Sends use ``MSG_NOSIGNAL`` (``SO_NOSIGPIPE`` on
macOS), so a dead peer is ``EPIPE``, never a ``SIGPIPE``.

What this module does not do: time out by itself (wrap a call in
``poorio.fail_after``), race address families in parallel (connect tries
``getaddrinfo``'s addresses one after the other), or resolve names itself
(numeric addresses are parsed in place; names go to ``poorio.threads`` when
it is present -- see ``_resolve``).

The package: ``sockets`` (what every socket object shares, ``SocketStream``,
name lookups), ``tcp`` (``Listener`` and the connect/listen functions for
TCP and Unix sockets), ``udp`` (``DatagramSocket``, ``open_udp``).
"""

from __future__ import annotations

from .sockets import SocketStream, getaddrinfo
from .tcp import Listener, connect_tcp, connect_unix, listen_tcp, listen_unix
from .udp import DatagramSocket, open_udp

__all__ = [
    "SocketStream",
    "Listener",
    "DatagramSocket",
    "connect_tcp",
    "listen_tcp",
    "connect_unix",
    "listen_unix",
    "open_udp",
    "getaddrinfo",
]
