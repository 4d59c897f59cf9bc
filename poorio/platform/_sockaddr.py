"""C socket addresses as bytes, for the completion backends' connect.

A proactor's connect hands the kernel a ``struct sockaddr`` that must stay
put until the operation completes, so it is built here as bytes and kept
by the operation.  Only numeric addresses: resolving names is the layers
above's business (and may block), not the platform's.
"""

from __future__ import annotations

import os
import socket
import struct

__all__ = ["sockaddr"]


def sockaddr(family: int, address) -> bytes:
    """The ``struct sockaddr`` bytes of ``address`` in ``family``, as ``connect(2)`` takes it.

    ``address`` is what ``socket.connect`` takes: ``(host, port)`` for
    AF_INET, ``(host, port[, flowinfo[, scope_id]])`` for AF_INET6, a path
    (str or bytes; a leading NUL makes a Linux abstract name) for AF_UNIX.

    Raises:
        OSError: ``host`` is not a numeric address of the family.
        ValueError: an unknown family or a malformed address.
    """
    if family == socket.AF_INET:
        host, port = address
        return struct.pack("=H", family) + struct.pack("!H", port) + socket.inet_pton(family, host) + bytes(8)
    if family == getattr(socket, "AF_INET6", None):
        host, port, flowinfo, scope_id = (tuple(address) + (0, 0))[:4]
        return (
            struct.pack("=H", family)
            + struct.pack("!HI", port, flowinfo)
            + socket.inet_pton(family, host)
            + struct.pack("=I", scope_id)
        )
    if family == getattr(socket, "AF_UNIX", None):
        path = os.fsencode(address)
        if not path.startswith(b"\0"):
            path += b"\0"
        if len(path) > 108:  # sizeof(sun_path) on Linux and Windows
            raise ValueError(f"AF_UNIX path too long: {len(path)} bytes")
        return struct.pack("=H", family) + path
    raise ValueError(f"no sockaddr for address family {family}")
