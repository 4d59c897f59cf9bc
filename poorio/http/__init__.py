"""poorio.http: an ASGI 3 HTTP/1.1 and WebSocket server on poorio fibers, with a live monitor page.

One fiber per connection; h11 parses and frames HTTP/1.1, wsproto
WebSocket -- this package does the IO, the limits and the ASGI plumbing,
not the protocol.  Plain ASGI apps run unchanged: hand-written
``async def app(scope, receive, send)``, Starlette and FastAPI-style apps
whose endpoints are ``async def`` (code that awaits asyncio or anyio
itself -- thread-pool endpoints, anyio task groups -- needs an asyncio
server; see docs/http.md).

::

    python -m poorio.http module:app --host 127.0.0.1 --port 8000 [--monitor]

    import poorio, poorio.http
    poorio.http.run(app, "127.0.0.1", 8000)                  # bind and serve
    await poorio.http.serve(app, listener, Config(...))      # on a listener bound elsewhere

h11 and wsproto are the optional extra ``pip install 'poorio[http]'``;
poorio's core needs neither.
"""

from __future__ import annotations

try:
    import h11 as _h11  # noqa: F401
    import wsproto as _wsproto  # noqa: F401
except ImportError as _missing:  # one line that says what to do
    raise ImportError(
        f"poorio.http needs h11 and wsproto ({_missing.name} is missing): pip install 'poorio[http]'"
    ) from None

from .config import Config
from .lifespan import LifespanFailure
from .monitor import Monitor, with_monitor
from .server import Server, ServerStatistics, run, serve
from .wire import ClientDisconnected

__all__ = [
    "Config", "Server", "ServerStatistics", "serve", "run", "Monitor", "with_monitor", "ClientDisconnected",
    "LifespanFailure",
]  # fmt: skip
