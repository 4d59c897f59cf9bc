"""Serving TCP on every core: ``serve_tcp(handler, host, port, workers=N)`` runs N process workers, restarted when they crash.

::

    async def handler(stream):              # one fiber per connection, in a worker
        line = await stream.read_line(max_size=1024)
        await stream.write_all(line)

    poorio.run(poorio.serve_tcp, "mymodule:handler", "127.0.0.1", 8000, 4)

``workers=1`` is the plain single-process server: a listener and a fiber
per connection, in the calling scheduler.  With ``workers=N`` the caller
becomes a supervisor of N process actors (``poorio.actors``), each an
interpreter of its own running the same loop -- the model of gunicorn's or
uvicorn's ``--workers``, not a home-made cluster.  Where the kernel spreads
connections over several listeners of one port
(``facts.REUSE_PORT_BALANCES``: Linux's ``SO_REUSEPORT``) each worker binds
a listener of its own; elsewhere the supervisor makes one listener and
every worker inherits it (all wait on it, one accepts).  Workers import the
handler by name (``"module:function"``, or a module-level function).

A worker that dies -- a crash, ``os._exit``, a kill -- is reported on the
``poorio`` logger with its error and traceback, and started again (after a
pause that grows while restarts keep failing fast).  SIGINT (Ctrl-C) or
SIGTERM to the supervisor, or cancelling it, stops them all cleanly: each
worker closes its listener, gives open connections ``grace`` seconds to
finish, cancels the rest and exits; the supervisor reaps them and returns.
A worker sent SIGTERM alone stops the same way (and is restarted).

A server that manages its own connections (``poorio.http``) passes
``per_listener=True``: then each worker, instead of a fiber per connection,
runs ``await handler(listener, stop)`` once, where ``stop`` is an operation
that completes when the worker must stop -- the handler drains its
connections itself and returns.

With workers, the supervisor's scheduler is an actor, and serve_tcp reads
its inbox: run it in a fiber of its own program, not beside other actor
code.  What this module does not do: TLS (wrap streams in the handler),
hot code reload, or socket activation.
"""

from __future__ import annotations

import os
import socket
import time

from ._core.cancel import CancelScope, move_on_after
from ._core.group import Group
from ._core.traps import current_scheduler, sleep
from .channel import Queue
from .errors import ActorExitedError, ActorFailedError, ClosedResourceError
from .net import Listener, getaddrinfo, listen_tcp
from .ops import Operation, choice
from .platform.facts import REUSE_ADDRESS_IS_SAFE, REUSE_PORT_BALANCES
from .sync import Event

__all__ = ["serve_tcp"]

_log_name = "poorio"
_RESTART_FIRST, _RESTART_MAX = 0.1, 5.0  # seconds between restarts of a worker that keeps dying fast
_FAST = 2.0  # a worker that dies sooner than this after starting is "failing fast"


async def serve_tcp(handler, host, port: int, workers: int = 1, *, backlog: int = 128, grace: float = 5.0,
                    on_ready=None, factory_args=None, per_listener: bool = False) -> None:
    """Serve TCP on ``host``:``port``, running ``await handler(stream)`` in a new fiber per connection.

    Runs until SIGINT/SIGTERM (in the main thread) or until cancelled; then
    stops cleanly (see the module docstring) and returns.  ``on_ready``, if
    given, is called with the listening address ``(host, port)`` once every
    worker listens (``port=0``: the port the kernel chose).  A handler's
    exception is logged; the stream is closed after the handler returns.

    With ``factory_args`` (a tuple of plain data, copied to each worker),
    ``handler`` is a factory instead: each worker calls (and, if it is
    async, awaits) ``handler(*factory_args)`` once, and serves every
    connection with the handler it returns -- so a layer above can name
    what to serve (``("myapp:app",)``) without an environment variable.

    With ``per_listener``, each worker (or the caller, with one worker)
    runs ``await handler(listener, stop)`` once instead: ``stop`` is an
    ``Operation`` that completes when it must stop, and it returns once it
    has drained its connections (``grace`` is then its business).

    Raises:
        ValueError: ``workers`` is below 1.
        TypeError: with ``workers > 1``, a handler that is not importable by
            name, or ``factory_args`` that cannot be sent.
        ModuleNotFoundError: with ``workers > 1``, the handler's module cannot be found.
        OSError: the port cannot be bound (unmodified, e.g. ``EADDRINUSE``).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, not {workers!r}")
    stop = Event()  # set by SIGINT/SIGTERM, when this is the main thread
    with _StopOnSignals(stop, ("SIGINT", "SIGTERM")):
        if workers == 1:
            listener = await listen_tcp(host, port, backlog=backlog)
            try:
                if on_ready is not None:
                    on_ready(listener.local_address[:2])
                target = await _make_handler(_resolve(handler), factory_args)
                if per_listener:
                    await target(listener, stop.wait_op())
                else:
                    await _serve(listener, target, grace, stop.wait_op())
            finally:
                listener.close()
        else:
            config = {
                "handler": _handler_name(handler), "backlog": backlog, "grace": grace,
                "factory_args": None if factory_args is None else list(factory_args),
                "per_listener": bool(per_listener),
            }  # fmt: skip
            await _supervise(config, host, port, workers, on_ready, stop)


# -- one server loop, in a worker or in the caller ----------------------------------------


async def _serve(listener: Listener, handler, grace: float, stop: Operation) -> None:
    """Accept until ``stop`` completes; then give connections ``grace`` seconds and cancel the rest."""
    async with Group() as connections:
        connections.spawn(_accept_loop, listener, handler, connections, name="accept loop")
        await stop.perform()
        listener.close()  # the accept loop ends; connections go on
        connections.cancel_scope.deadline = time.monotonic() + grace


async def _accept_loop(listener: Listener, handler, connections: Group) -> None:
    while True:
        try:
            stream = await listener.accept()
        except ClosedResourceError:
            return
        except OSError as error:  # a connection that failed before we took it (ECONNABORTED...)
            _log().warning("accept() failed: %s", error)
            continue
        connections.spawn(_handle, handler, stream, name="connection")


async def _handle(handler, stream) -> None:
    try:
        await handler(stream)
    except Exception:  # one connection's failure must not end the server
        _log().exception("serve_tcp: the handler failed on a connection")
    finally:
        stream.close()


class _StopOnSignals:
    """While entered, the signals ``names`` set ``stop`` (in the main thread; elsewhere they are left alone).

    The handlers stay installed for the whole block, not only while a fiber
    waits, so a signal between two waits never meets the default action.
    """

    def __init__(self, stop: Event, names: tuple) -> None:
        self.stop = stop
        self.names = names
        self.scheduler = None
        self.watched = []

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self.scheduler = current_scheduler()
            for name in self.names:
                if hasattr(signal, name):
                    self.scheduler.watch_signal(getattr(signal, name), self)
                    self.watched.append(getattr(signal, name))
        return self

    def __exit__(self, *exc_info) -> None:
        for signum in self.watched:
            self.scheduler.unwatch_signal(signum)  # the previous handler comes back
        self.watched = []

    def on_event(self) -> None:
        self.stop.set()


def _log():
    import logging

    return logging.getLogger(_log_name)


def _resolve(handler):
    """The handler itself, or the function a ``"module:function"`` name points to."""
    if not isinstance(handler, str):
        if not callable(handler):
            raise TypeError(f"a handler is an async function or a 'module:function' name, not {handler!r}")
        return handler
    from importlib import import_module

    module, _, qualname = handler.partition(":")
    target = import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


async def _make_handler(handler, factory_args):
    """``handler``, or what the factory ``handler(*factory_args)`` makes (awaited if it is a coroutine)."""
    if factory_args is None:
        return handler
    made = handler(*factory_args)
    if hasattr(made, "__await__"):
        made = await made
    return made


def _handler_name(handler) -> str:
    """``"module:function"`` for the workers to import; the module must at least be findable here.

    Raises:
        ValueError: a name without a colon.
        ModuleNotFoundError: the module cannot be found (caught here, not in a restart loop of workers).
        TypeError: a function the workers could not import by name.
    """
    if isinstance(handler, str):
        module, sep, qualname = handler.partition(":")
        if not sep or not module or not qualname:
            raise ValueError(f"a handler name is 'module:function', not {handler!r}")
        from importlib.util import find_spec

        if find_spec(module) is None:
            raise ModuleNotFoundError(f"no module named {module!r} (the handler {handler!r})", name=module)
        return handler
    from .actors import importable_name

    return importable_name(handler)


# -- the supervisor and its workers ---------------------------------------------------------


async def _supervise(config: dict, host, port: int, workers: int, on_ready, stop: Event) -> None:
    from . import actors

    where = await _address(host, port)
    if REUSE_PORT_BALANCES:  # each worker binds its own listener; this socket holds the port until they have
        held = _bound_socket(where, None, reuse_port=True)
        handed = ()
    else:  # one listener, inherited by every worker
        held = _bound_socket(where, config["backlog"], reuse_port=False)
        held.setblocking(False)  # shared by the workers' accept loops: it must never block one of them
        handed = (held,)
    address = held.getsockname()[:2]
    state = _Supervision(config, address, handed)
    try:
        async with Group() as group:
            state.group = group
            for index in range(workers):
                state.start(index)
            try:
                while True:
                    kind, value = await choice(
                        actors.receive_op().wrap(lambda m: ("message", m)),
                        state.ended.get_op().wrap(lambda e: ("ended", e)),
                        stop.wait_op().wrap(lambda _: ("stop", None)),
                    ).perform()
                    if kind == "stop":
                        break
                    if kind == "ended":
                        state.restart(*value)
                    elif type(value) is tuple and len(value) == 3 and value[0] == "listening":
                        state.listening.add(value[1])
                        if len(state.listening) == workers and on_ready is not None:
                            on_ready(address)
                            on_ready = None
            finally:
                state.stopping = True
                with CancelScope(shield=True):
                    await _stop_workers(state.live, config["grace"])
                group.cancel_scope.cancel()  # the watchers and pending restarts
    finally:
        held.close()


class _Supervision:
    """The supervisor's view of its workers: which run, which listen, how often each failed fast."""

    def __init__(self, config: dict, address: tuple, handed: tuple) -> None:
        self.config = config  # what every worker gets: handler name, factory_args, backlog, grace
        self.address = address
        self.handed = handed  # sockets every worker inherits (the shared listener), or ()
        self.ended = Queue(64)  # (index, address, error or None) of each worker that ended
        self.live = {}  # index -> (address, started at)
        self.listening = set()  # indexes of workers that reported listening
        self.fast_failures = {}  # index -> consecutive fast deaths
        self.stopping = False
        self.group = None

    def start(self, index: int) -> None:
        from . import actors

        if self.stopping:
            return
        host, port = self.address
        worker = actors.spawn(_worker, self.config, host, port, index, kind="process", sockets=self.handed)
        self.live[index] = (worker, time.monotonic())
        self.group.spawn(_watch, index, worker, self.ended, name=f"watch worker {index}")

    def restart(self, index: int, worker, error) -> None:
        started = self.live.pop(index)[1]
        self.listening.discard(index)
        if time.monotonic() - started < _FAST:
            failures = self.fast_failures[index] = self.fast_failures.get(index, 0) + 1
            delay = min(_RESTART_FIRST * 2 ** (failures - 1), _RESTART_MAX)
        else:
            self.fast_failures[index] = 0
            delay = 0.0
        _log().error("serve_tcp: worker %d %s; starting it again in %.1f s",
                     index, f"failed: {error}" if error is not None else "returned", delay)
        self.group.spawn(self._start_later, index, delay, name=f"restart worker {index}")

    async def _start_later(self, index: int, delay: float) -> None:
        await sleep(delay)
        self.start(index)


async def _watch(index: int, worker, ended: Queue) -> None:
    try:
        await worker.join()
        error = None
    except ActorFailedError as failure:
        error = failure
    await ended.put((index, worker, error))


async def _stop_workers(live: dict, grace: float) -> None:
    """Ask every live worker to stop; wait for them (their links close after, as the supervisor ends)."""
    for worker, _started in live.values():
        try:
            await worker.send("stop")
        except ActorExitedError:
            pass
    with move_on_after(grace + 5.0):
        for worker, _started in live.values():
            try:
                await worker.join()
            except ActorFailedError:
                pass


async def _address(host, port: int):
    infos = await getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    return family, kind, proto, address


def _bound_socket(where, backlog: int | None, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to ``where``, listening if ``backlog`` is given; close-on-exec like every poorio fd."""
    family, kind, proto, address = where
    sock = socket.socket(family, kind, proto)
    try:
        if REUSE_ADDRESS_IS_SAFE:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        if backlog is not None:
            sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


async def _worker(config: dict, host, port: int, index: int) -> None:
    """A worker process's main actor: listen, report, serve until told to stop (or SIGTERM)."""
    from . import actors

    backlog, grace = config["backlog"], config["grace"]
    target = await _make_handler(_resolve(config["handler"]), config["factory_args"])
    inherited = actors.inherited_sockets()
    if inherited:
        listener = Listener(inherited[0])
    else:
        listener = Listener(_bound_socket(await _address(host, port), backlog, reuse_port=True))
    try:
        stop = Event()
        with _StopOnSignals(stop, ("SIGTERM",)):
            await actors.parent().send(("listening", index, os.getpid()))
            told = choice(actors.receive_op(), stop.wait_op())
            if config["per_listener"]:
                await target(listener, told)
            else:
                await _serve(listener, target, grace, told)
    finally:
        listener.close()
