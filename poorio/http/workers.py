"""``--workers N``: one ``poorio.http`` server in each process worker of ``poorio.serve_tcp``.

``serve_tcp(..., per_listener=True)`` gives each worker a listener of its
own on the same port (``SO_REUSEPORT`` where the kernel balances it) and an
operation that completes when the worker must stop.  ``listener_server`` is
the factory each worker calls, by name, with plain data: it loads the app in
that interpreter and returns the coroutine function that serves the
listener -- the lifespan, the connection limit and the graceful drain are
each worker's own, as with uvicorn's workers.  The supervisor handles
SIGINT/SIGTERM and stops the workers; their servers leave signals alone.
"""

from __future__ import annotations

import sys

from .. import Group
from .config import Config
from .monitor import with_monitor
from .server import Server

__all__ = ["listener_server"]


def listener_server(app_spec: str, factory: bool, monitor: bool, monitor_public: bool, app_dir: str, settings: dict):
    """Load the app named ``app_spec`` here and return ``serve(listener, stop)`` for it.

    Raises:
        ValueError, ImportError: the app cannot be loaded (the worker fails, and says why).
    """
    from .__main__ import load_app

    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    app = load_app(app_spec, factory=factory)
    if monitor:
        app = with_monitor(app, public=monitor_public)
    config = Config(**settings, handle_signals=False)

    async def serve(listener, stop) -> None:
        server = Server(app, config)
        async with Group() as watcher:
            watcher.spawn(_shut_down_when, stop, server, name="http worker stop")
            try:
                await server.serve(listener)
            finally:
                watcher.cancel_scope.cancel()

    return serve


async def _shut_down_when(stop, server: Server) -> None:
    await stop.perform()
    server.shutdown()
