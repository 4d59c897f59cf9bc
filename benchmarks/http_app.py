"""The one minimal ASGI app every server in ``benchmarks.http_bench`` serves: a fixed plain-text answer.

Kept to the ASGI essentials so the servers, not the app, are measured:
two messages per request (made fresh, as any app makes them), a
Content-Length, no lifespan.
"""

BODY = b"Hello, world!"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(BODY))]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
