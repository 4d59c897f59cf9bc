"""One request and its response: the ``receive`` and ``send`` an ASGI app is called with.

A ``Cycle`` is made per request by the connection (``connection.py``) and
dropped after it.  ``receive()`` hands out the request body as h11 frames
it -- what one read brought, as one ``http.request`` -- and answers
``Expect: 100-continue`` the first time it is called; after the body it
waits for the end (the response complete, or the client gone) and says
``http.disconnect``.  ``send()`` holds ``http.response.start`` back and
writes it with the first body message, so a whole response is one write.

What it leaves to the connection: reading (with its deadlines), writing,
refusing, and deciding whether the connection goes on afterwards.
"""

from __future__ import annotations

import logging
import math

import h11

from .. import CancelScope, sleep
from .wire import GONE, REASONS, ClientDisconnected

__all__ = ["Cycle"]

access_log = logging.getLogger("poorio.http.access")

_COALESCE = 65536  # a body up to this size is written together with the response head
_NO_LENGTH = frozenset((204, 304))  # statuses that must not carry Content-Length (1xx never reach send)
_DISCONNECT = "http.disconnect"
_INF = math.inf
_NEED_DATA = h11.NEED_DATA
_Data = h11.Data
_EOM = h11.EndOfMessage
_END = h11.EndOfMessage()  # immutable: one for every response
_Response = h11.Response
_RemoteError = h11.RemoteProtocolError


class Cycle:
    """One request and its response: the ``receive`` and ``send`` an ASGI app is called with."""

    __slots__ = (
        "conn", "scope", "head", "body_done", "delivered", "pending", "received", "started", "complete", "disconnected",
        "status", "headers", "waiter",
    )  # fmt: skip

    def __init__(self, conn, scope: dict, head: bool, body_done: bool, pending) -> None:
        self.conn = conn
        self.scope = scope
        self.head = head  # a HEAD request: the app's body is not sent
        self.body_done = body_done  # h11 has the whole request: its body ended (or there was none)
        self.delivered = False  # the app was given the last http.request message
        self.pending = pending  # a body Data event h11 produced before the app asked
        self.received = 0
        self.started = False  # http.response.start was sent
        self.complete = False  # the last body message was sent
        self.disconnected = False
        self.status = 0
        self.headers = ()
        self.waiter = None  # the cancel scope of a receive() waiting for the end

    async def receive(self) -> dict:
        """The next ASGI message: the body in ``http.request`` pieces, then ``http.disconnect``."""
        if self.delivered:
            if self.complete or self.disconnected:
                return {"type": _DISCONNECT}
            return await self._wait_for_end()
        if self.body_done:  # a request without a body
            self.delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        conn = self.conn
        h = conn.h11
        config = conn.server.config
        if h.they_are_waiting_for_100_continue and not self.started:
            try:
                await conn.write(h.send(h11.InformationalResponse(status_code=100, headers=(), reason=b"Continue")))
            except ClientDisconnected:
                self.disconnected = True
                return {"type": _DISCONNECT}
        chunks = []
        event = self.pending
        self.pending = None
        try:
            while True:
                if event is None:
                    event = h.next_event()
                cls = event.__class__
                if cls is _Data:
                    data = event.data
                    self.received += len(data)
                    if self.received > config.max_body_size:
                        return await self._refuse(413, f"the body is larger than {config.max_body_size} bytes")
                    chunks.append(data)
                elif cls is _EOM:
                    self.body_done = self.delivered = True
                    break
                elif event is _NEED_DATA:
                    if chunks:  # hand over what came; the app asks again for more
                        break
                    h.receive_data(await conn.read_body())
                else:  # ConnectionClosed
                    self.disconnected = True
                    return {"type": _DISCONNECT}
                event = None
        except _RemoteError as error:  # a broken chunked body, or the client left mid-body
            return await self._refuse(error.error_status_hint, str(error))
        except GONE:
            self.disconnected = True
            return {"type": _DISCONNECT}
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return {"type": "http.request", "body": bytes(body), "more_body": not self.body_done}

    async def _refuse(self, status: int, detail: str) -> dict:
        """The request body is bad or too large: answer ``status`` if we still can; the app sees a disconnect."""
        self.disconnected = True
        if not self.started:
            self.started = self.complete = True
            await self.conn.reject(status, detail, head=self.head, linger=False)  # the cycle's end lingers
        return {"type": _DISCONNECT}

    async def _wait_for_end(self) -> dict:
        """Wait until the response is complete or the client leaves; then ``http.disconnect``.

        Reading on here is how a disconnect is noticed; bytes of pipelined
        requests that arrive meanwhile go to h11's buffer (up to the header
        limit, then reading pauses until the response is done).
        """
        conn = self.conn
        h = conn.h11
        limit = conn.server.config.max_header_bytes
        with CancelScope() as scope:
            self.waiter = scope  # send() cancels it when the response completes
            try:
                while True:
                    if conn.pipelined >= limit:
                        await sleep(_INF)
                    data = await conn.read_more()
                    if not data:
                        self.disconnected = True
                        break
                    conn.pipelined += len(data)
                    h.receive_data(data)
            except GONE:
                self.disconnected = True
            finally:
                self.waiter = None
        return {"type": _DISCONNECT}

    async def send(self, message: dict) -> None:
        """Take one ASGI message: ``http.response.start``, then ``http.response.body`` until ``more_body`` is false.

        Raises:
            ClientDisconnected: the client is gone (an ``OSError``, as ASGI 2.4 asks).
            RuntimeError: a message out of order, or after the response was complete.
            h11.LocalProtocolError: the response breaks HTTP (say, more body than its Content-Length).
        """
        kind = message["type"]
        if self.disconnected:
            raise ClientDisconnected(f"the client {self.conn.client} is gone")
        if kind == "http.response.body" and self.started and not self.complete:
            conn = self.conn
            h = conn.h11
            body = message.get("body", b"")
            more = message.get("more_body", False)
            out = b""
            if self.headers is not None:  # the head is still held back: it goes out with this body
                out = h.send(self._response(body, more))
                self.headers = None
            if body and not self.head:
                if len(body) <= _COALESCE:
                    out += h.send(_Data(data=body))
                else:
                    if out:
                        await self._write(out)
                    for piece in h.send_with_data_passthrough(_Data(data=body)):
                        await self._write(piece)
                    out = b""
            if not more:
                out += h.send(_END)
                self.complete = True
                if self.waiter is not None:
                    self.waiter.cancel()
            if out:
                await self._write(out)
        elif kind == "http.response.start" and not self.started:
            self.started = True
            self.status = message["status"]
            self.headers = message.get("headers", ())
            if self.conn.server.config.access_log:
                access_log.info('%s - "%s" %d', _client(self.scope), request_line(self.scope), self.status)
        elif self.complete:
            raise RuntimeError(f"ASGI message {kind!r} sent after the response was complete")
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} (started: {self.started})")

    async def _write(self, data) -> None:
        try:
            await self.conn.write(data)
        except ClientDisconnected:
            self.disconnected = True
            raise

    def _response(self, body, more: bool):
        """The h11 ``Response`` for the held-back start message, with the headers the server adds."""
        conn = self.conn
        status = self.status
        headers = [*self.headers, (b"date", conn.server.date)]
        if not more and status not in _NO_LENGTH:
            for name, _ in self.headers:
                lowered = name.lower()
                if lowered == b"content-length" or lowered == b"transfer-encoding":
                    break
            else:  # the whole body is in this one message: say how long it is, rather than chunk it
                headers.append((b"content-length", b"%d" % len(body)))
        if conn.closing or not self.body_done:  # shutting down, or a request body left unread
            headers.append((b"connection", b"close"))
        return _Response(status_code=status, headers=headers, reason=REASONS.get(status, b""))


def request_line(scope: dict) -> str:
    """``"GET /path?query"``, for log lines."""
    query = scope.get("query_string")
    return f"{scope.get('method', 'GET')} {scope['path']}{'?' + query.decode('latin-1') if query else ''}"


def _client(scope: dict) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"
