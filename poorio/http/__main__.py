"""``python -m poorio.http module:app``: serve an ASGI app from the command line, like uvicorn.

::

    python -m poorio.http myapp:app --host 127.0.0.1 --port 8000
    python -m poorio.http myapp:create_app --factory --monitor     # the live monitor at /_poorio/
    python -m poorio.http myapp:app --uds /run/myapp.sock          # a Unix socket behind a proxy
    python -m poorio.http myapp:app --workers 4                    # one process per core

Every limit of ``poorio.http.Config`` has an option of the same name
(``--max-body-size``, ``--keep-alive-timeout``...).  Exit status: 0 after a
graceful shutdown, 1 when the app cannot be loaded or the address not
bound, 3 when the app's lifespan startup failed.  ``--workers N`` runs N
process workers under ``poorio.serve_tcp`` (see ``poorio.http.workers``),
each with a listener of its own; a worker that fails is reported and
started again.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from . import Config, LifespanFailure, run, with_monitor
from .config import _LIMITS, _TIMES

__all__ = ["main", "load_app"]


def load_app(spec: str, *, factory: bool = False):
    """The object ``spec`` (``"module:attribute"``, attribute may be dotted) names; called if ``factory``.

    Raises:
        ValueError: ``spec`` is not of that form, or names nothing.
        ImportError: the module does not import (its own error).
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"the app must be given as 'module:attribute', not {spec!r}")
    target = importlib.import_module(module_name)
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no attribute {attribute!r}") from None
    return target() if factory else target


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m poorio.http", description="Serve an ASGI app on poorio fibers.")
    parser.add_argument("app", help="the ASGI app, as module:attribute")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default: %(default)s)")
    parser.add_argument("--uds", help="bind this Unix socket path instead of host and port")
    parser.add_argument("--factory", action="store_true", help="the app is a factory: call it for the app")
    parser.add_argument("--workers", type=int, default=1,
                        help="process workers, each serving the port with a listener of its own (default: %(default)s)")
    parser.add_argument("--app-dir", default=".", help="directory put first on sys.path (default: the current one)")
    parser.add_argument("--monitor", action="store_true", help="mount the live monitor page at /_poorio/")
    parser.add_argument("--monitor-public", action="store_true",
                        help="let clients not on this machine see the monitor too")
    parser.add_argument("--root-path", default="", help="the ASGI root_path, when a proxy mounts the app under a prefix")
    parser.add_argument("--lifespan", choices=("auto", "on", "off"), default="auto",
                        help="run the app's lifespan: auto (if it has one), on, off (default: %(default)s)")
    parser.add_argument("--access-log", action="store_true", help="log one line per response")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                        help="(default: %(default)s)")
    parser.add_argument("--capacity", type=int, help="fds the scheduler's pool can watch (default: poorio's)")
    parser.add_argument("--backend", help="force a readiness backend (epoll, kqueue, wsapoll, poll)")
    parser.add_argument("--max-connections", type=int, help="open connections at most (default: the pool's capacity less 16)")
    for name, (default, _least) in _LIMITS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=default, help="(default: %(default)s)")
    for name, default in _TIMES.items():
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=default, help="seconds (default: %(default)s)")
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, os.path.abspath(args.app_dir))
    try:
        app = load_app(args.app, factory=args.factory)
        settings = {name: getattr(args, name) for name in (*_LIMITS, *_TIMES)}
        config = Config(
            **settings, max_connections=args.max_connections, root_path=args.root_path, lifespan=args.lifespan,
            access_log=args.access_log,
        )  # fmt: skip
    except (ImportError, ValueError, TypeError) as error:
        print(f"poorio.http: {error}", file=sys.stderr)
        return 1
    if args.workers != 1:
        return _serve_with_workers(args, settings)
    if args.monitor:
        app = with_monitor(app, public=args.monitor_public)
    try:
        run(app, args.host, args.port, config=config, uds=args.uds, capacity=args.capacity, backend=args.backend)
    except LifespanFailure as error:
        print(f"poorio.http: {error}", file=sys.stderr)
        return 3
    except OSError as error:
        print(f"poorio.http: cannot serve on {args.uds or f'{args.host}:{args.port}'}: {error}", file=sys.stderr)
        return 1
    return 0


def _serve_with_workers(args, settings: dict) -> int:
    """``--workers N``: this process supervises N workers, each running the server on its own listener."""
    import poorio

    if args.workers < 1:
        print(f"poorio.http: --workers must be at least 1, not {args.workers}", file=sys.stderr)
        return 1
    if args.uds or args.capacity is not None:
        print("poorio.http: --workers serves TCP with each worker's default pool: no --uds or --capacity",
              file=sys.stderr)  # fmt: skip
        return 1
    settings = dict(settings, max_connections=args.max_connections, root_path=args.root_path,
                    lifespan=args.lifespan, access_log=args.access_log)  # fmt: skip
    factory_args = (args.app, args.factory, args.monitor, args.monitor_public, os.path.abspath(args.app_dir), settings)

    def ready(address) -> None:
        logging.getLogger("poorio.http").info("serving on http://%s:%d with %d workers", *address, args.workers)

    async def supervise() -> None:
        await poorio.serve_tcp("poorio.http.workers:listener_server", args.host, args.port, args.workers,
                               factory_args=factory_args, per_listener=True, on_ready=ready)  # fmt: skip

    try:
        poorio.run(supervise, backend=args.backend)
    except OSError as error:
        print(f"poorio.http: cannot serve on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
