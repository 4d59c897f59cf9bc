"""The live monitor: an ASGI app that shows the scheduler it runs on, pushed to a browser with Server-Sent Events.

Mounted (``with_monitor(app)``, or ``python -m poorio.http ... --monitor``)
it answers under ``/_poorio/``:

``/_poorio/``           one small HTML page, no JavaScript framework;
``/_poorio/events``     a ``text/event-stream``: one JSON snapshot per interval;
``/_poorio/snapshot``   the same snapshot once, as JSON (for curl and scripts).

A snapshot holds every fiber (id, name, state, what it waits on and for
how long -- at most ``max_fibers`` of them, with counts of all), the
pool's occupancy (backend, fds watched, capacity), switches, polls and
events delivered per second, and the server's connections and requests
(when it runs on ``poorio.http``, which hands itself to apps through the
scope's ``extensions``).  Rates are differences between two snapshots of
one stream, so the first snapshot has none.

It answers loopback clients only (and Unix-socket ones); ``public=True``
lets anyone see it -- fiber names include client addresses, so think
before you do.  The stream ends when the server begins to shut down.
"""

from __future__ import annotations

import json
import os
import time

from .. import fibers as _fibers
from .. import move_on_after, sleep
from .. import stats as _stats

__all__ = ["Monitor", "with_monitor", "PREFIX"]

PREFIX = "/_poorio"
_PAGE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "monitor.html")
_SCHEDULER_FIELDS = ("backend", "capacity", "fds", "fibers", "ready", "io_waits", "sleeping", "timers", "events")
_RATES = ("switches", "polls", "delivered", "requests")


def _is_local(client) -> bool:
    if client is None:  # a Unix socket: local by nature
        return True
    host = client[0]
    return host == "::1" or host.startswith("127.") or host.startswith("::ffff:127.") or host == "localhost"


class Monitor:
    """The monitor as an ASGI app (``http`` scopes; it ignores ``lifespan``).

    ``interval``: seconds between snapshots on the event stream;
    ``max_fibers``: how many fibers a snapshot lists; ``public``: answer
    clients that are not on this machine too.
    """

    def __init__(self, *, interval: float = 1.0, max_fibers: int = 200, public: bool = False) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, not {interval!r}")
        self.interval = float(interval)
        self.max_fibers = int(max_fibers)
        self.public = bool(public)
        self._page = None
        self._started = time.monotonic()

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        if not self.public and not _is_local(scope.get("client")):
            await _respond(send, 404, b"text/plain; charset=utf-8", b"Not Found\n")
            return
        path = scope["path"][len(scope.get("root_path", "")):]
        if path == "":  # the page's relative links need the trailing slash
            location = (scope.get("root_path", "") + "/").encode("latin-1")
            await send({"type": "http.response.start", "status": 307, "headers": [(b"location", location)]})
            await send({"type": "http.response.body", "body": b""})
        elif path in ("/", "/index.html"):
            await _respond(send, 200, b"text/html; charset=utf-8", self.page(), cache=False)
        elif path == "/events":
            await self._stream(scope, send)
        elif path == "/snapshot":
            snap = self.snapshot(_server(scope))
            await _respond(send, 200, b"application/json", json.dumps(snap).encode(), cache=False)
        else:
            await _respond(send, 404, b"text/plain; charset=utf-8", b"Not Found\n")

    def page(self) -> bytes:
        """The HTML page (read from ``monitor.html`` beside this module, once)."""
        if self._page is None:
            with open(_PAGE_FILE, "rb") as source:
                self._page = source.read()
        return self._page

    def snapshot(self, server=None, previous: dict | None = None) -> dict:
        """One JSON-ready snapshot of the current scheduler (and ``server``, the scope's extension).

        ``previous``: the snapshot before, of the same stream, for rates.

        Raises:
            RuntimeError: not called from a poorio fiber.
        """
        now = time.monotonic()
        sched = _stats()
        table = _fibers()
        states = {"running": 0, "ready": 0, "waiting": 0}
        for info in table:
            states[info.state] = states.get(info.state, 0) + 1
        shown = table[: self.max_fibers]
        snap = {
            "time": time.time(),
            "uptime": round(now - self._started, 1),
            "pid": os.getpid(),
            "scheduler": {name: getattr(sched, name) for name in _SCHEDULER_FIELDS},
            "counters": {"switches": sched.switches, "polls": sched.polls, "delivered": sched.delivered},
            "states": states,
            "fibers": [
                {
                    "id": info.id,
                    "name": info.name,
                    "state": info.state,
                    "waiting": info.waiting,
                    "for": None if info.since is None else round(now - info.since, 3),
                }
                for info in shown
            ],
            "fibers_total": len(table),
            "server": None,
            "rates": None,
            "clock": now,
        }
        if server is not None:
            record = server["statistics"]()
            stats = dict(zip(record.__slots__, record.values()))
            snap["server"] = stats
            snap["counters"]["requests"] = stats["requests"]
        if previous is not None:
            elapsed = now - previous["clock"]
            if elapsed > 0:
                snap["rates"] = {
                    name: round((snap["counters"][name] - previous["counters"][name]) / elapsed, 1)
                    for name in _RATES
                    if name in snap["counters"] and name in previous["counters"]
                }
        return snap

    async def _stream(self, scope, send) -> None:
        server = _server(scope)
        stopping = server["stopping"] if server is not None else None
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),
                (b"cache-control", b"no-store"),
                (b"x-accel-buffering", b"no"),  # tell a proxy in front not to hold the stream back
            ],
        })
        previous = None
        try:
            await send({"type": "http.response.body", "body": b"retry: 2000\n\n", "more_body": True})
            while stopping is None or not stopping.is_set():
                snap = self.snapshot(server, previous)
                previous = snap
                body = b"data: " + json.dumps(snap, separators=(",", ":")).encode() + b"\n\n"
                await send({"type": "http.response.body", "body": body, "more_body": True})
                if stopping is None:
                    await sleep(self.interval)
                else:
                    with move_on_after(self.interval):
                        await stopping.wait()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the browser went away (ClientDisconnected)
            return


def with_monitor(app, prefix: str = PREFIX, *, monitor: Monitor | None = None, **options):
    """``app`` with the monitor answering under ``prefix`` (``options`` go to ``Monitor``).

    Everything else -- other paths, WebSockets, the lifespan -- goes to ``app``.
    """
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"prefix must start with '/' and not end with one, not {prefix!r}")
    shown = Monitor(**options) if monitor is None else monitor

    async def app_with_monitor(scope, receive, send) -> None:
        if scope["type"] == "http":
            root = scope.get("root_path", "")
            path = scope["path"][len(root):]
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                await shown({**scope, "root_path": root + prefix}, receive, send)
                return
        await app(scope, receive, send)

    app_with_monitor.monitor = shown
    return app_with_monitor


def _server(scope):
    return scope.get("extensions", {}).get("poorio.http")


async def _respond(send, status: int, content_type: bytes, body: bytes, cache: bool = True) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    if not cache:
        headers.append((b"cache-control", b"no-store"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
