"""``python -m poorio``: say what poorio found on this machine, then show it working.

``python -m poorio``        platform facts, then a ping-pong through every backend
``python -m poorio info``   platform facts only
"""

from __future__ import annotations

import os
import socket
import sys
import time

from . import __version__
from . import platform as _platform
from .platform import READABLE, _libc


def info() -> list[tuple[str, str]]:
    """The facts ``python -m poorio info`` prints, as (label, value) pairs."""
    impl = sys.implementation
    version = ".".join(str(part) for part in sys.version_info[:3])
    try:
        chosen = _platform.default_backend()
    except Exception as exc:  # a bad POORIO_BACKEND: show why instead of a traceback
        chosen = f"none ({exc})"
    return [
        ("poorio", __version__),
        ("python", f"{impl.name} {version} ({sys.executable})"),
        ("os", f"{sys.platform} ({os.uname().sysname} {os.uname().release})" if hasattr(os, "uname") else sys.platform),
        ("architecture", f"{_libc.MULTIARCH}, {_libc.POINTER_SIZE * 8}-bit pointers, {sys.byteorder}-endian"),
        ("backends known", ", ".join(_platform.known_backends())),
        ("backends usable", ", ".join(_platform.backends()) or "none"),
        ("backend chosen", chosen + (" (POORIO_BACKEND)" if os.environ.get("POORIO_BACKEND") else "")),
        ("default capacity", str(_platform.DEFAULT_CAPACITY)),
    ]


def print_info() -> None:
    for label, value in info():
        print(f"{label + ':':18}{value}")


def ping_pong(backend: str, rounds: int = 10_000) -> float:
    """Bounce one byte across a socketpair ``rounds`` times through a pool.

    Each side only reads when the pool says it is readable -- the whole idea
    of readiness IO in a dozen lines.  Returns round trips per second.
    """
    left, right = socket.socketpair()
    with left, right, _platform.new_pool(4, backend) as pool:
        left.setblocking(False)
        right.setblocking(False)
        pool.add(left, READABLE)
        pool.add(right, READABLE)
        peer = {left.fileno(): right, right.fileno(): left}
        own = {left.fileno(): left, right.fileno(): right}
        left.send(b"!")
        trips = 0
        started = time.perf_counter()
        while trips < rounds:
            for fd, _flags in pool.cycle(1.0):
                data = own[fd].recv(1)
                peer[fd].send(data)
                trips += 1
        elapsed = time.perf_counter() - started
        pool.remove(left)
        pool.remove(right)
    return rounds / elapsed


def demo() -> None:
    print_info()
    print()
    for backend in _platform.backends():
        rate = ping_pong(backend)
        print(f"{backend:>6}: 10,000 socketpair ping-pongs through SocketIoPool, {rate:,.0f} hops/s")


def main(argv: list[str]) -> int:
    if argv[:1] == ["info"]:
        print_info()
        return 0
    if argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    demo()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
