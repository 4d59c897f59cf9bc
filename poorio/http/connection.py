"""One HTTP/1.1 connection: a fiber reads requests with h11 and runs the ASGI app for each, in order.

The connection fiber is the whole server side of a TCP connection: it
reads until h11 has a request, calls the application *in this same fiber*
with that request's ``receive``/``send`` (a ``Cycle``), and only then reads
the next one -- so pipelined requests are answered in order with no queue,
and a request costs no fiber of its own.  The price: work an application
does after completing its response (a Starlette background task) delays
the next request on *this* connection, never the server's other ones.

The request's ``receive``/``send`` live in ``cycle.py``; this module reads
requests, runs the app, refuses what breaks a limit, and decides whether
the connection goes on.

Deadlines are not cancel scopes: each wait sets ``deadline`` (against the
server's coarse ``clock``) and the server's timekeeper cancels the fiber
of any connection whose deadline passed -- no timer is armed or disarmed
per request.  What each timeout answers is listed in ``config``.

What this module does not do: HTTP/2, trailers, or keep reading the
socket while the application runs (a disconnect is seen when the app
calls ``receive()``, or when ``send()`` fails).
"""

from __future__ import annotations

import logging
import math
from itertools import chain
from urllib.parse import unquote

import h11

from .. import CancelScope, Cancelled, move_on_after
from .cycle import Cycle, request_line
from .wire import ASGI_VERSION, GONE, READ_SIZE, ClientDisconnected, anyio_hint, error_response

__all__ = ["HttpConnection", "IDLE", "HEAD", "APP", "BODY"]

log = logging.getLogger("poorio.http")

IDLE, HEAD, APP, BODY = 0, 1, 2, 3  # what a connection waits for: a request, the rest of its head, the app, body bytes
_LINGER_TIME, _LINGER_BYTES = 2.0, 1 << 20  # how long/much to drain a client still sending after our last word
_INF = math.inf
_flatten = chain.from_iterable

_NEED_DATA = h11.NEED_DATA
_Request = h11.Request
_Data = h11.Data
_EOM = h11.EndOfMessage
_DONE = h11.DONE
_SWITCH = h11.MIGHT_SWITCH_PROTOCOL
_RemoteError = h11.RemoteProtocolError
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")}


class HttpConnection:
    """The server side of one client connection; ``run()`` is its fiber."""

    __slots__ = (
        "server", "stream", "h11", "client", "fiber", "deadline", "phase", "expired", "closing", "requests",
        "pipelined", "websocket", "measure",
    )  # fmt: skip

    def __init__(self, server, stream, client) -> None:
        self.server = server
        self.stream = stream
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=server.config.max_header_bytes)
        self.client = client  # (host, port) of the peer, as the ASGI scope wants it
        self.fiber = None  # set by the server right after spawning run()
        self.deadline = _INF  # server.clock value after which the timekeeper cancels this connection
        self.phase = IDLE
        self.expired = None  # the phase this connection was in when its deadline passed
        self.closing = False  # close after the response in flight (graceful shutdown)
        self.requests = 0
        self.pipelined = 0  # bytes of later requests read while an app waited for a disconnect
        self.websocket = None  # the WebSocket session, once upgraded
        self.measure = False  # the request head must be measured: more bytes than its limit came with it

    # -- called by the server --------------------------------------------------------

    def expire(self) -> None:
        """The deadline passed: cancel whatever the connection is doing (the timekeeper calls this)."""
        self.expired = self.phase
        self.deadline = _INF
        self.fiber.cancel()

    def shutdown(self) -> None:
        """Graceful shutdown: an idle connection closes now, a busy one after its response."""
        self.closing = True
        if self.websocket is not None:
            self.websocket.shutdown()
        elif self.phase == IDLE:
            self.fiber.cancel()

    async def run(self) -> None:
        """Serve requests until the client leaves, an error or a timeout; then close the socket."""
        try:
            await self._serve()
        except Cancelled:
            if self.expired == HEAD:  # a request head that never finished: say so before closing
                with CancelScope(shield=True), move_on_after(1.0):
                    await self.reject(408, "the request head took too long")
        except GONE as error:
            log.debug("connection from %s ended: %r", self.client, error)
        except Exception as error:  # a bug of ours: this connection ends, the server goes on
            log.error("connection from %s failed", self.client, exc_info=error)
        finally:
            self.stream.close()
            self.server.connection_closed(self)

    # -- reading requests ------------------------------------------------------------

    async def _serve(self) -> None:
        server = self.server
        h = self.h11
        while True:
            try:
                buffered, ended = h.trailing_data  # a pipelined request, or the end, needs no read
                event = h.next_event() if buffered or ended else _NEED_DATA
                self.measure = True  # a pipelined head may be larger than any one read
                if event is _NEED_DATA:
                    if self.closing:
                        return
                    event = await self._read_head()
            except _RemoteError as error:
                await self.reject(error.error_status_hint, str(error))
                return
            if event.__class__ is not _Request:  # ConnectionClosed: the client is done
                return
            self.requests += 1
            server.requests += 1
            if not await self._cycle(event):
                return
            h.start_next_cycle()
            self.pipelined = 0

    async def _read_head(self):
        """Read until h11 has the next event (a request, or the end); sets the idle/head deadlines."""
        server = self.server
        config = server.config
        h = self.h11
        read = self.stream.read_some
        self.phase = IDLE
        self.deadline = server.clock + (config.keep_alive_timeout if self.requests else config.header_timeout)
        got = 0
        while True:
            data = await read(READ_SIZE)
            got += len(data)
            h.receive_data(data)
            event = h.next_event()
            if event is not _NEED_DATA:
                self.phase = APP
                self.deadline = _INF
                self.measure = got > config.max_header_bytes
                return event
            if self.phase == IDLE:  # a head has begun: from now on it has header_timeout to finish
                self.phase = HEAD
                self.deadline = server.clock + config.header_timeout

    async def _cycle(self, request) -> bool:
        """Answer one request; whether the connection may carry another."""
        server = self.server
        config = server.config
        h = self.h11
        headers = request.headers
        items = headers.raw_items()
        head = request.method == b"HEAD"
        if len(request.target) > config.max_request_line:
            return await self.reject(414, f"the request target is longer than {config.max_request_line} bytes", head=head)
        if len(items) > config.max_headers:
            return await self.reject(431, f"more than {config.max_headers} header fields", head=head)
        # h11 checks the size of a head only while it is incomplete: one that
        # arrived whole is measured here, unless fewer bytes than the limit came.
        if self.measure and _head_size(request, items) > config.max_header_bytes:
            return await self.reject(431, f"the request head is larger than {config.max_header_bytes} bytes", head=head)
        try:
            event = h.next_event()
        except _RemoteError as error:
            return await self.reject(error.error_status_hint, str(error), head=head)
        if event.__class__ is _EOM:
            pending = None
            body_done = True
            if h.their_state is _SWITCH and _wants_websocket(headers):
                from .websocket import serve_websocket  # wsproto loads with the first WebSocket

                return await serve_websocket(self, request, self._scope(request, items, "websocket"))
        else:  # a body follows: refuse a declared one that is too large before reading it
            pending = event if event.__class__ is _Data else None
            body_done = False
            declared = _content_length(headers)
            if declared is not None and declared > config.max_body_size:
                return await self.reject(413, f"the body is larger than {config.max_body_size} bytes", head=head)
        cycle = Cycle(self, self._scope(request, items, "http"), head, body_done, pending)
        try:
            await server.app(cycle.scope, cycle.receive, cycle.send)
        except Exception as error:
            return await self._app_failed(cycle, error)
        if not cycle.complete:
            if cycle.disconnected:
                return False
            if not cycle.started:
                log.error("ASGI app returned without starting a response to %s", request_line(cycle.scope))
                return await self.reject(500, head=cycle.head)
            log.error("ASGI app returned without completing its response to %s", request_line(cycle.scope))
            return False
        if cycle.disconnected or h.our_state is not _DONE:  # h11 says MUST_CLOSE
            if not cycle.body_done:
                await self._linger()
            return False
        return h.their_state is _DONE

    def _scope(self, request, items: list, kind: str) -> dict:
        server = self.server
        raw_path, _, query = request.target.partition(b"?")
        path = raw_path.decode("ascii")  # h11 admits only visible ASCII in a target
        if "%" in path:
            path = unquote(path)
        root = server.config.root_path
        scope = {
            "type": kind,
            "asgi": ASGI_VERSION,
            "http_version": "1.1" if request.http_version == b"1.1" else request.http_version.decode("ascii"),
            "server": server.address,
            "client": self.client,
            "scheme": "http" if kind == "http" else "ws",
            "method": _METHODS.get(request.method) or request.method.decode("ascii"),
            "root_path": root,
            "path": root + path if root else path,
            "raw_path": root.encode("ascii") + raw_path if root else raw_path,
            "query_string": query,
            "headers": [(name.lower(), value) for name, value in items],
            "extensions": server.extensions,
        }
        if server.state:
            scope["state"] = server.state.copy()
        return scope

    # -- endings ---------------------------------------------------------------------

    async def _app_failed(self, cycle: Cycle, error: Exception) -> bool:
        if cycle.disconnected:  # the app met the client's departure; nothing went wrong here
            log.debug("ASGI app ended by a disconnect on %s: %r", request_line(cycle.scope), error)
            return False
        log.error("Exception in ASGI app answering %s%s", request_line(cycle.scope), anyio_hint(error), exc_info=error)
        if not cycle.started:
            return await self.reject(500, head=cycle.head)
        return False  # half a response is out: closing is the only honest end

    async def reject(self, status: int, detail: str = "", *, head: bool = False, linger: bool = True) -> bool:
        """Answer ``status`` (when a response can still start), then close gently; always False.

        ``head``: the request was a HEAD (no body in the answer); ``linger``:
        drain the client before closing (else the caller does it later).
        """
        self.server.rejected += 1
        data = error_response(self.h11, status, detail, head=head)
        if data is not None:
            try:
                await self.write(data)
            except ClientDisconnected:
                return False
        if linger:
            await self._linger()
        return False

    async def _linger(self) -> None:
        """Half-close, then drain what the client still sends for a moment.

        Closing a socket with unread bytes makes the kernel send a reset,
        which can destroy our last response before the client has read it.
        """
        stream = self.stream
        try:
            await stream.send_eof()
            with move_on_after(_LINGER_TIME):
                drained = 0
                while drained < _LINGER_BYTES:
                    data = await stream.read_some(READ_SIZE)
                    if not data:
                        break
                    drained += len(data)
        except GONE:
            pass

    async def read_body(self) -> bytes:
        """One read of request-body bytes, within ``body_timeout``."""
        self.phase = BODY
        self.deadline = self.server.clock + self.server.config.body_timeout
        try:
            return await self.stream.read_some(READ_SIZE)
        finally:
            self.phase = APP
            self.deadline = _INF

    async def read_more(self) -> bytes:
        """One read with no deadline: while the app has the connection, only the app's time counts."""
        return await self.stream.read_some(READ_SIZE)

    async def write(self, data) -> None:
        """Write all of ``data`` within ``send_timeout``.

        Raises:
            ClientDisconnected: the client is gone (the kernel's error is its ``__cause__``).
        """
        server = self.server
        self.deadline = server.clock + server.config.send_timeout
        try:
            await self.stream.write_all(data)
        except GONE as error:
            raise ClientDisconnected(f"the client {self.client} is gone") from error
        finally:
            self.deadline = _INF


def _head_size(request, items) -> int:
    """The bytes of a request head, give or take the spaces h11 stripped."""
    return len(request.method) + len(request.target) + 14 + 4 * len(items) + sum(map(len, _flatten(items)))


def _content_length(headers) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value)  # h11 has checked it is digits
    return None


def _wants_websocket(headers) -> bool:
    for name, value in headers:
        if name == b"upgrade" and value.lower() == b"websocket":
            return True
    return False
