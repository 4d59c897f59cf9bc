"""What the server adds around h11: reason phrases, the Date header, error responses, the disconnect error.

h11 parses and frames every byte; this module only holds the small
constant parts a server fills in itself.  Error responses go out through
the connection's own ``h11.Connection`` too, so their framing is h11's.
"""

from __future__ import annotations

import time
from http import HTTPStatus

import h11

from .. import BrokenResourceError, ClosedResourceError

__all__ = ["ClientDisconnected", "REASONS", "GONE", "READ_SIZE", "http_date", "error_response", "anyio_hint", "ASGI_VERSION"]

# ASGI 3 with spec 2.4: send() on a connection the client closed raises an
# OSError (ClientDisconnected below), which is what lets Starlette stream
# without a helper task listening for http.disconnect.
ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}

READ_SIZE = 65536  # what one read of a connection asks for
GONE = (OSError, ClosedResourceError, BrokenResourceError)  # what a dead or closed socket raises
REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}

_DAYS = (b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun")
_MONTHS = (b"", b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")


class ClientDisconnected(OSError):
    """The client is gone: raised by an ASGI ``send()`` once the connection cannot take the message.

    An ``OSError`` as ASGI 2.4 asks; ``__cause__`` holds the kernel's own
    error (``EPIPE``, ``ECONNRESET``...) when there was one.
    """


def http_date(when: float | None = None) -> bytes:
    """``when`` (a ``time.time()`` value, default now) as an HTTP date: ``b"Sun, 06 Nov 1994 08:49:37 GMT"``."""
    t = time.gmtime(when)
    return b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec,
    )  # fmt: skip


def error_response(conn: h11.Connection, status: int, detail: str = "", *, head: bool = False) -> bytes | None:
    """A complete plain-text error response, ``Connection: close``, framed by ``conn``.

    ``head``: it answers a HEAD request, so the body is left out.  None
    when ``conn`` can no longer send one (a response was already under way):
    then the only thing left to do is to close the connection.
    """
    body = REASONS.get(status, b"Error") + (b": " + detail.encode("utf-8", "replace") if detail else b"") + b"\n"
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        (b"connection", b"close"),
        (b"date", http_date()),
    ]
    try:
        start = conn.send(h11.Response(status_code=status, headers=headers, reason=REASONS.get(status, b"")))
        if not head:
            start += conn.send(h11.Data(data=body))
        return start + conn.send(h11.EndOfMessage())
    except h11.LocalProtocolError:
        return None


def anyio_hint(error: BaseException) -> str:
    """A pointer for the one failure every anyio-based app meets on fibers."""
    if type(error).__name__ == "AsyncLibraryNotFoundError" or "not a poorio trap" in str(error):
        return (
            " (the app awaited asyncio or anyio, which poorio fibers do not run: in Starlette or FastAPI make"
            " endpoints and background tasks 'async def' and avoid thread-pool helpers; see docs/http.md)"
        )
    return ""
