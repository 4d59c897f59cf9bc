"""Small ASGI apps the HTTP tests serve -- in process, or by name through ``python -m poorio.http``.

Nothing here needs pytest, so a server in a child process can import it.
"""

from __future__ import annotations

import poorio


async def hello_app(scope, receive, send):
    """``/`` says hello; ``/echo`` echoes the body; ``/stream?n=N`` streams N chunks; ``/boom`` raises; ``/pid`` says which process."""
    if scope["type"] == "lifespan":
        await lifespan_ok(receive, send)
        return
    path = scope["path"]
    if path == "/echo":
        body = await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.body", "body": body})
    elif path == "/stream":
        n = int(scope["query_string"].decode().partition("=")[2] or 3)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for i in range(n):
            await send({"type": "http.response.body", "body": b"chunk %d\n" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/boom":
        raise ValueError("the app failed on purpose")
    elif path == "/pid":  # which process answered (the workers test)
        import os

        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
    elif path == "/nothing":
        return
    elif path == "/sleep":
        await poorio.sleep(float(scope["query_string"].decode().partition("=")[2] or 0.2))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"slept"})
    else:
        body = b"Hello, " + path.encode() + (b"?" + scope["query_string"] if scope["query_string"] else b"")
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})


async def read_body(receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("the client went away")
        body += message.get("body", b"")
        if not message.get("more_body"):
            return bytes(body)


async def lifespan_ok(receive, send):
    while True:
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return


async def failing_startup(scope, receive, send):
    """An app whose lifespan startup fails."""
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no database"})

