"""An ASGI app served by poorio.http, with the live monitor on.

    python3 demos/http_server.py              # http://127.0.0.1:8000/ and the monitor at /_poorio/
    python3 demos/http_server.py 8080         # another port (0: the kernel picks one)
    python3 demos/http_server.py --selftest   # serve, be our own client for a moment, exit

Needs the http extra (``pip install 'poorio[http]'``: h11 and wsproto).
The app is plain ASGI -- no framework -- written as one ``async def``:
a page, a JSON greeting, a streamed count, a slow endpoint (so the monitor
has fibers waiting on something) and a WebSocket echo.  Ctrl-C shuts down
gracefully; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from urllib.parse import parse_qs

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import poorio  # noqa: E402 (after the path tweak, so it runs from a checkout)
import poorio.http  # noqa: E402

PAGE = b"""<!doctype html><meta charset="utf-8"><title>poorio.http demo</title>
<h1>poorio.http demo</h1>
<ul>
<li><a href="/hello?name=fibers">/hello?name=fibers</a> -- JSON
<li><a href="/count?n=10">/count?n=10</a> -- a streamed (chunked) response
<li><a href="/slow?s=5">/slow?s=5</a> -- answers after 5 s: watch its fiber wait in the monitor
<li>ws://&lt;this host&gt;/ws -- a WebSocket echo
<li><a href="/_poorio/">/_poorio/</a> -- the live monitor
</ul>
"""


async def app(scope, receive, send) -> None:
    """The whole application: one ASGI 3 callable."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "websocket":
        await websocket_echo(receive, send)
        return
    query = {key: values[-1] for key, values in parse_qs(scope["query_string"].decode()).items()}
    path = scope["path"]
    if path == "/":
        await respond(send, 200, "text/html; charset=utf-8", PAGE)
    elif path == "/hello":
        name = query.get("name", "world")
        await respond(send, 200, "application/json", json.dumps({"hello": name}).encode())
    elif path == "/count":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for i in range(1, int(query.get("n", "5")) + 1):
            await send({"type": "http.response.body", "body": b"%d\n" % i, "more_body": True})
            await poorio.sleep(0.1)
        await send({"type": "http.response.body", "body": b""})
    elif path == "/slow":
        await poorio.sleep(float(query.get("s", "5")))
        await respond(send, 200, "text/plain", b"that took a while\n")
    else:
        await respond(send, 404, "text/plain", b"not found\n")


async def websocket_echo(receive, send) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})


async def respond(send, status: int, content_type: str, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type.encode())]})
    await send({"type": "http.response.body", "body": body})


async def selftest(server: poorio.http.Server, port: int) -> None:
    """Be a client of our own server with poorio's streams, then shut it down."""
    import h11

    async with await poorio.connect_tcp("127.0.0.1", port) as stream:
        for target in ("/hello?name=selftest", "/count?n=3", "/_poorio/snapshot"):
            client = h11.Connection(h11.CLIENT)
            await stream.write_all(client.send(h11.Request(method="GET", target=target, headers=[("host", "demo")])))
            client.send(h11.EndOfMessage())
            body = b""
            while not isinstance(event := client.next_event(), h11.EndOfMessage):
                if event is h11.NEED_DATA:
                    client.receive_data(await stream.read_some())
                elif isinstance(event, h11.Data):
                    body += event.data
            if target.startswith("/_poorio"):
                snap = json.loads(body)
                print(f"GET {target}: {snap['fibers_total']} fibers, backend {snap['scheduler']['backend']}, "
                      f"{snap['server']['requests']} requests so far")  # fmt: skip
            else:
                print(f"GET {target}: {body!r}")
    server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", nargs="?", type=int, default=8000)
    parser.add_argument("--selftest", action="store_true", help="serve on a free port, query it, exit")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    server = poorio.http.Server(poorio.http.with_monitor(app))

    async def serve() -> None:
        listener = await poorio.listen_tcp("127.0.0.1", 0 if args.selftest else args.port)
        port = listener.local_address[1]
        print(f"serving on http://127.0.0.1:{port}/ -- the monitor is at http://127.0.0.1:{port}/_poorio/", flush=True)
        async with poorio.Group() as group:
            group.spawn(server.serve, listener)
            if args.selftest:
                group.spawn(selftest, server, port)

    poorio.run(serve)
    if args.selftest:
        print("selftest: ok")


if __name__ == "__main__":
    main()
