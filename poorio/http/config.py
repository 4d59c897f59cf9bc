"""The server's settings: every limit against bad input and slow clients, with a safe default.

One ``Config`` is shared by every connection of a server; it is read, never
changed, while the server runs.  Sizes are bytes, times seconds.  What each
limit answers when it is hit:

=======================  ========  ==============================================
setting                  default   when exceeded
=======================  ========  ==============================================
``max_request_line``     8 KiB     the request target is longer: ``414``, closed
``max_header_bytes``     16 KiB    request line and headers are larger: ``431``
``max_headers``          100       more header fields: ``431``, closed
``max_body_size``        10 MiB    a larger body (declared or sent): ``413``
``header_timeout``       10 s      the request head took longer: ``408``, closed
``keep_alive_timeout``   5 s       an idle keep-alive connection is closed
``body_timeout``         30 s      no body bytes for that long: closed
``send_timeout``         30 s      the client took no response bytes that long
``max_connections``      pool      connections beyond it wait in the backlog
``graceful_timeout``     10 s      requests still running at shutdown are cancelled
``ws_max_message_size``  1 MiB     a larger WebSocket message: closed with 1009
=======================  ========  ==============================================

``max_connections=None`` means the scheduler's pool capacity less a small
reserve (``poorio.stats().capacity - 16``), so a flood of clients is
back-pressure in the kernel's accept queue, never a full pool.
"""

from __future__ import annotations

__all__ = ["Config"]

_LIMITS = {
    # name: (default, smallest allowed)
    "max_request_line": (8192, 16),
    "max_header_bytes": (16384, 64),
    "max_headers": (100, 1),
    "max_body_size": (10 * 1024 * 1024, 0),
    "ws_max_message_size": (1024 * 1024, 16),
}
_TIMES = {
    "header_timeout": 10.0,
    "keep_alive_timeout": 5.0,
    "body_timeout": 30.0,
    "send_timeout": 30.0,
    "graceful_timeout": 10.0,
}
_LIFESPAN = ("auto", "on", "off")
CONNECTION_RESERVE = 16  # pool slots kept free of connections: the listener, the signal socket, the app's own


class Config:
    """Server settings; every argument is keyword-only and validated here.

    Besides the limits in the module's table: ``root_path`` (the ASGI
    ``root_path``, for an app mounted under a prefix by a proxy);
    ``lifespan`` (``"auto"``: run the app's lifespan if it has one, ``"on"``:
    it must, ``"off"``: never); ``handle_signals`` (SIGINT/SIGTERM start a
    graceful shutdown; only possible in the main thread); ``access_log``
    (one ``poorio.http.access`` log line per response);
    ``ws_per_message_deflate`` (accept WebSocket compression when offered).

    Raises:
        TypeError: an unknown setting, or a value of the wrong type.
        ValueError: a value out of range.
    """

    __slots__ = (
        *_LIMITS, *_TIMES, "max_connections", "root_path", "lifespan", "handle_signals", "access_log",
        "ws_per_message_deflate",
    )  # fmt: skip

    def __init__(self, **settings) -> None:
        unknown = set(settings) - set(self.__slots__)
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        for name, (default, least) in _LIMITS.items():
            value = settings.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {value!r}")
            if value < least:
                raise ValueError(f"{name} must be at least {least}, not {value}")
            object.__setattr__(self, name, value)
        for name, default in _TIMES.items():
            value = settings.get(name, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number of seconds, not {value!r}")
            if not value > 0:
                raise ValueError(f"{name} must be positive, not {value}")
            object.__setattr__(self, name, float(value))
        if self.max_header_bytes < self.max_request_line:
            raise ValueError("max_header_bytes must be at least max_request_line: the request line is part of the head")
        limit = settings.get("max_connections")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"max_connections must be a positive int or None, not {limit!r}")
        object.__setattr__(self, "max_connections", limit)
        root_path = settings.get("root_path", "")
        if not isinstance(root_path, str) or (root_path and not root_path.startswith("/")) or root_path.endswith("/"):
            raise ValueError(f"root_path must be '' or start with '/' and not end with one, not {root_path!r}")
        object.__setattr__(self, "root_path", root_path)
        lifespan = settings.get("lifespan", "auto")
        if lifespan not in _LIFESPAN:
            raise ValueError(f"lifespan must be one of {', '.join(_LIFESPAN)}, not {lifespan!r}")
        object.__setattr__(self, "lifespan", lifespan)
        for name, default in (("handle_signals", True), ("access_log", False), ("ws_per_message_deflate", True)):
            object.__setattr__(self, name, bool(settings.get(name, default)))

    def __setattr__(self, name, value):
        raise AttributeError("a Config is read-only; make a new one with replace()")

    def replace(self, **changes) -> Config:
        """A copy with ``changes`` applied (validated like the constructor's arguments)."""
        settings = {name: getattr(self, name) for name in self.__slots__}
        settings.update(changes)
        return Config(**settings)

    def connection_limit(self, capacity: int) -> int:
        """``max_connections``, or what a pool of ``capacity`` fds can hold with the reserve left free."""
        if self.max_connections is not None:
            return self.max_connections
        return max(1, capacity - CONNECTION_RESERVE)

    def __repr__(self) -> str:
        body = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Config({body})"
