"""WebSocket on poorio.http, exercised by the ``websockets`` client: echo, limits, refusals, shutdown.

The client is websockets' asyncio one, run by ``asyncio.run`` in the test's
thread (its threaded client meets a race in PyPy 7.3.11's Thread.join).
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from http_support import WAIT, LiveServer, read_all

websockets = pytest.importorskip("websockets", reason="websockets is a test extra: pip install -e '.[test]'")
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402


async def echo_app(scope, receive, send):
    """Echo every message; ``/reject`` refuses, ``/deny`` answers with HTTP, ``/proto`` picks a subprotocol."""
    if scope["type"] == "lifespan":
        return  # no lifespan support: served anyway in auto mode
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 426, "headers": []})
        await send({"type": "http.response.body", "body": b"WebSocket only"})
        return
    first = await receive()
    assert first == {"type": "websocket.connect"}
    if scope["path"] == "/reject":
        await send({"type": "websocket.close"})
        return
    if scope["path"] == "/deny":
        await send({"type": "websocket.http.response.start", "status": 418, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "websocket.http.response.body", "body": b"I'm a teapot"})
        return
    subprotocol = scope["subprotocols"][-1] if scope["path"] == "/proto" and scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": [(b"x-echo", b"yes")]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            disconnects.append(message["code"])
            return
        if message.get("text") == "close please":
            await send({"type": "websocket.close", "code": 4000, "reason": "as asked"})
            return
        await send({"type": "websocket.send", **{k: v for k, v in message.items() if k in ("text", "bytes")}})


disconnects = []


def test_echo_text_bytes_and_large_messages():
    disconnects.clear()

    async def client(port):
        async with connect(f"ws://127.0.0.1:{port}/echo", open_timeout=WAIT, max_size=None) as ws:
            assert ws.response.headers["x-echo"] == "yes"
            await ws.send("hello")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "hello"
            await ws.send(b"\x00\x01binary")
            assert await asyncio.wait_for(ws.recv(), WAIT) == b"\x00\x01binary"
            big = bytes(range(256)) * 2000  # 512 KB, in one message
            await ws.send(big)
            assert await asyncio.wait_for(ws.recv(), WAIT) == big
            await ws.send(["frag", "mented", " text"])  # one message in three frames
            assert await asyncio.wait_for(ws.recv(), WAIT) == "fragmented text"
            await asyncio.wait_for(await ws.ping(b"are you there"), WAIT)
            assert live.server.statistics().websockets == 1

    with LiveServer(echo_app) as live:
        asyncio.run(client(live.port))
        live.wait_for(lambda s: s.websockets == 0 and s.connections == 0, "the WebSocket to end")
    assert disconnects == [1000]


def test_app_closes_with_its_code():
    async def client(port):
        async with connect(f"ws://127.0.0.1:{port}/", open_timeout=WAIT) as ws:
            await ws.send("close please")
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), WAIT)
        return closed.value.rcvd

    with LiveServer(echo_app) as live:
        rcvd = asyncio.run(client(live.port))
    assert rcvd.code == 4000 and rcvd.reason == "as asked"


def test_subprotocol_is_negotiated():
    async def client(port):
        async with connect(f"ws://127.0.0.1:{port}/proto", subprotocols=["chat", "superchat"], open_timeout=WAIT) as ws:
            return ws.subprotocol

    with LiveServer(echo_app) as live:
        assert asyncio.run(client(live.port)) == "superchat"


def test_close_before_accept_is_a_403_and_the_denial_extension_sends_http():
    async def refused(url):
        with pytest.raises(InvalidStatus) as refusal:
            async with connect(url, open_timeout=WAIT):
                pass
        return refusal.value.response

    with LiveServer(echo_app) as live:
        assert asyncio.run(refused(f"ws://127.0.0.1:{live.port}/reject")).status_code == 403
        denied = asyncio.run(refused(f"ws://127.0.0.1:{live.port}/deny"))
        assert denied.status_code == 418 and denied.body == b"I'm a teapot"


def test_a_message_over_the_limit_closes_with_1009():
    async def client(port):
        async with connect(f"ws://127.0.0.1:{port}/", open_timeout=WAIT) as ws:
            await ws.send(b"x" * 1000)
            assert len(await asyncio.wait_for(ws.recv(), WAIT)) == 1000
            await ws.send(b"x" * 1001)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), WAIT)
        return closed.value.rcvd.code

    with LiveServer(echo_app, ws_max_message_size=1000) as live:
        assert asyncio.run(client(live.port)) == 1009


@pytest.mark.parametrize(
    "headers,status",
    [(b"", 400), (b"Sec-WebSocket-Version: 13\r\n", 400), (b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: x\r\n", 426)],
    ids=["no-version", "no-key", "old-version"],
)
def test_a_bad_handshake_is_refused(headers, status):
    with LiveServer(echo_app) as live:
        with socket.create_connection(("127.0.0.1", live.port), WAIT) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + headers + b"\r\n")
            reply = read_all(sock)
        assert reply.startswith(b"HTTP/1.1 %d " % status), reply
        assert live.server.statistics().rejected == 1


def test_graceful_shutdown_closes_websockets_with_1012():
    disconnects.clear()

    async def client(live):
        async with connect(f"ws://127.0.0.1:{live.port}/", open_timeout=WAIT) as ws:
            await ws.send("still here")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "still here"
            stopping = asyncio.get_running_loop().run_in_executor(None, live.stop)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), WAIT)
            await stopping
        return closed.value.rcvd.code

    live = LiveServer(echo_app).__enter__()
    try:
        code = asyncio.run(client(live))
    finally:
        live.stop()
    assert code == 1012 and disconnects == [1012]
