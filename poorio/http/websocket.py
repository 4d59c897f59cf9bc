"""WebSocket over an upgraded HTTP/1.1 connection: wsproto frames, the ASGI ``websocket`` scope.

h11 has parsed the upgrade request; wsproto takes it from there
(``initiate_upgrade_connection``), does the handshake and all framing.  The
connection fiber runs the application with a ``WebSocketSession``'s
``receive``/``send``:

- ``receive()``: ``websocket.connect`` first, then ``websocket.receive``
  (``text`` or ``bytes``, fragments joined into whole messages of at most
  ``ws_max_message_size`` -- a larger one closes with 1009), then
  ``websocket.disconnect`` with the close code.  Pings are answered here.
- ``send()``: ``websocket.accept`` (subprotocol, extra headers;
  permessage-deflate when the client offers it), ``websocket.send``,
  ``websocket.close``; before accepting, ``websocket.close`` refuses with
  403 and the ``websocket.http.response`` extension sends any HTTP response.

Writes come from the app's fibers and from ``receive()`` (pongs, close
replies), so they take turns through a lock.  At graceful shutdown an open
session is closed with 1012 (service restart).  What it does not do: send
pings of its own, or time out an idle WebSocket.
"""

from __future__ import annotations

import logging
from collections import deque

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from .. import CancelScope, Lock, move_on_after
from .wire import GONE, ClientDisconnected, anyio_hint

__all__ = ["WebSocketSession", "serve_websocket"]

log = logging.getLogger("poorio.http")
_CLOSE_WAIT = 1.0  # seconds to wait for the client's close frame after ours
_GOING_AWAY, _TOO_BIG, _SERVER_ERROR, _RESTART, _ABNORMAL = 1001, 1009, 1011, 1012, 1006


async def serve_websocket(conn, request, scope: dict) -> bool:
    """Run the app on the upgrade ``request`` of ``conn``; False: the connection is done afterwards."""
    ws = WSConnection(ConnectionType.SERVER)
    try:
        ws.initiate_upgrade_connection(request.headers.raw_items(), request.target)
        hello = next(ws.events())
    except RemoteProtocolError as error:  # not a valid handshake: answer what wsproto suggests
        hint = error.event_hint if isinstance(error.event_hint, RejectConnection) else RejectConnection()
        conn.server.rejected += 1
        await _write_quietly(conn, ws.send(hint))
        return False
    scope["subprotocols"] = hello.subprotocols
    session = WebSocketSession(conn, ws, hello, conn.h11.trailing_data[0])
    conn.websocket = session
    server = conn.server
    server.websockets += 1
    try:
        await server.app(scope, session.receive, session.send)
    except Exception as error:
        if session.state is not _ENDED:
            log.error("Exception in ASGI app serving the WebSocket %s%s", scope["path"], anyio_hint(error), exc_info=error)
        await session.finish(_SERVER_ERROR, 500)
    else:
        await session.finish(1000, 500)
    finally:
        server.websockets -= 1
    return False


async def _write_quietly(conn, data: bytes) -> None:
    try:
        await conn.write(data)
    except ClientDisconnected:
        pass


_CONNECTING, _OPEN, _ENDED = "connecting", "open", "ended"  # the session as the app sees it


class WebSocketSession:
    """The ASGI ``receive``/``send`` of one WebSocket, over one ``HttpConnection``."""

    __slots__ = (
        "conn", "ws", "request", "state", "connect_sent", "inbox", "parts", "size", "code", "lock",
        "waiter", "trailing", "close_with",
    )  # fmt: skip

    def __init__(self, conn, ws: WSConnection, request, trailing: bytes) -> None:
        self.conn = conn
        self.ws = ws
        self.request = request  # wsproto's Request: subprotocols and extensions offered
        self.state = _CONNECTING
        self.connect_sent = False
        self.inbox = deque()  # ASGI messages parsed, not yet received by the app
        self.parts = []  # fragments of the message being received
        self.size = 0
        self.code = None  # the close code, once the session has ended
        self.lock = Lock()  # one writer at a time: the app's fibers and receive()'s replies
        self.waiter = None  # the cancel scope of a receive() waiting for bytes
        self.trailing = trailing  # bytes that came after the upgrade request
        self.close_with = None  # a close code receive() must send: shutdown, or a message too large

    def shutdown(self) -> None:
        """Graceful shutdown: close with 1012; a receive() waiting now returns the disconnect."""
        if self.close_with is None:
            self.close_with = _RESTART
        if self.waiter is not None:
            self.waiter.cancel()

    # -- receive ---------------------------------------------------------------------

    async def receive(self) -> dict:
        """The next ASGI message: ``websocket.connect``, ``websocket.receive``..., ``websocket.disconnect``."""
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        inbox = self.inbox
        while not inbox:
            if self.state is _ENDED:
                return {"type": "websocket.disconnect", "code": self.code}
            if self.close_with is not None:
                await self._close(self.close_with)
                continue
            with CancelScope() as scope:
                self.waiter = scope
                try:
                    data = await self.conn.read_more()
                except GONE:
                    data = b""
                finally:
                    self.waiter = None
            if scope.cancelled_caught:  # shutdown() woke us
                continue
            await self._feed(data)
        return inbox.popleft()

    async def _feed(self, data: bytes) -> None:
        """Give wsproto ``data`` (``b""``: the end) and turn its events into ASGI messages or replies."""
        ws = self.ws
        try:
            ws.receive_data(data or None)
            for event in ws.events():
                if isinstance(event, Message):
                    self._collect(event)
                elif isinstance(event, Ping):
                    await self._write(ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    if ws.state is ConnectionState.REMOTE_CLOSING:
                        await self._write(ws.send(event.response()))
                    self._end(event.code)
        except RemoteProtocolError as error:  # a bad frame: close with wsproto's code (1002, 1007...)
            hint = error.event_hint
            await self._close(hint.code if isinstance(hint, CloseConnection) else 1002)
        except (LocalProtocolError, ClientDisconnected):  # the connection died under us
            self._end(_ABNORMAL)

    def _collect(self, event) -> None:
        if self.state is not _OPEN:
            return
        self.size += len(event.data)
        if self.size > self.conn.server.config.ws_max_message_size:
            self.close_with = _TOO_BIG  # receive() sends the close
            return
        self.parts.append(event.data)
        if event.message_finished:
            parts, self.parts, self.size = self.parts, [], 0
            if isinstance(event, TextMessage):
                self.inbox.append({"type": "websocket.receive", "text": "".join(parts)})
            else:
                self.inbox.append({"type": "websocket.receive", "bytes": b"".join(parts)})

    # -- send ------------------------------------------------------------------------

    async def send(self, message: dict) -> None:
        """Take one ASGI message: ``websocket.accept``, ``websocket.send``, ``websocket.close``, or an HTTP denial.

        Raises:
            ClientDisconnected: the session has ended (an ``OSError``).
            RuntimeError: a message that does not fit the session's state.
        """
        kind = message["type"]
        ws = self.ws
        if self.state is _OPEN:
            if kind == "websocket.send":
                data = message.get("bytes")
                if data is None:
                    data = message.get("text")
                    if data is None:
                        raise RuntimeError("websocket.send needs 'bytes' or 'text'")
                await self._write(ws.send(BytesMessage(data=data) if isinstance(data, (bytes, bytearray)) else TextMessage(data=data)))
            elif kind == "websocket.close":
                await self._close(message.get("code") or 1000, message.get("reason") or "")
            else:
                raise RuntimeError(f"unexpected ASGI message {kind!r} on an open WebSocket")
        elif self.state is _CONNECTING:
            if kind == "websocket.accept":
                await self._accept(message)
            elif kind == "websocket.close":
                self._end(message.get("code") or 1000)
                await self._write(ws.send(RejectConnection(status_code=403)))
            elif kind == "websocket.http.response.start":
                self.state = _ENDED
                self.code = _ABNORMAL
                headers = list(message.get("headers", ()))
                await self._write(ws.send(RejectConnection(status_code=message["status"], headers=headers, has_body=True)))
            else:
                raise RuntimeError(f"unexpected ASGI message {kind!r} before the WebSocket was accepted")
        elif kind == "websocket.http.response.body" and ws.state is ConnectionState.REJECTING:
            await self._write(ws.send(RejectData(data=message.get("body", b""), body_finished=not message.get("more_body", False))))
        else:
            raise ClientDisconnected(f"the WebSocket has closed (code {self.code})")

    async def _accept(self, message: dict) -> None:
        extensions = []
        if self.conn.server.config.ws_per_message_deflate and any(
            offer.split(";", 1)[0].strip() == PerMessageDeflate.name for offer in self.request.extensions
        ):
            extensions.append(PerMessageDeflate())
        accept = AcceptConnection(
            subprotocol=message.get("subprotocol"),
            extensions=extensions,
            extra_headers=list(message.get("headers", ())),
        )
        data = self.ws.send(accept)
        self.state = _OPEN
        await self._write(data)
        if self.trailing:  # frames sent right behind the handshake
            trailing, self.trailing = self.trailing, b""
            await self._feed(trailing)

    async def _close(self, code: int, reason: str = "") -> None:
        """Send our close frame (if the connection still takes one); the session has ended."""
        if self.ws.state is ConnectionState.OPEN:
            self._end(code)
            try:
                await self._write(self.ws.send(CloseConnection(code=code, reason=reason)))
            except ClientDisconnected:
                pass
        else:
            self._end(code)

    def _end(self, code: int) -> None:
        if self.state is not _ENDED:
            self.state = _ENDED
            self.code = code

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        async with self.lock:
            try:
                await self.conn.write(data)
            except ClientDisconnected:
                self._end(_ABNORMAL)
                raise

    async def finish(self, code: int, status: int) -> None:
        """The app returned (or failed): close what is still open -- ``code``, or ``status`` if never accepted."""
        ws = self.ws
        try:
            if ws.state is ConnectionState.CONNECTING:
                await self._write(ws.send(RejectConnection(status_code=status)))
            elif ws.state is ConnectionState.REJECTING:
                await self._write(ws.send(RejectData(data=b"", body_finished=True)))
            elif ws.state is ConnectionState.OPEN:
                await self._close(code)
            if ws.state is ConnectionState.LOCAL_CLOSING:  # wait a moment for the client's close frame
                with move_on_after(_CLOSE_WAIT):
                    while ws.state is ConnectionState.LOCAL_CLOSING:
                        data = await self.conn.read_more()
                        if not data:
                            break
                        ws.receive_data(data)
                        for _ in ws.events():
                            pass
        except (ClientDisconnected, RemoteProtocolError, LocalProtocolError, *GONE):
            pass
