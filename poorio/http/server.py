"""The server: accept connections on a listener, serve each in a fiber, shut down gracefully.

``serve(app, listener)`` is the whole server on a listener that is already
bound -- a poorio ``Listener`` or a listening ``socket.socket`` handed over
(a process worker's share of one port, say).  ``run(app, host, port)``
binds one and runs a scheduler around ``serve``; the command line
(``python -m poorio.http``) calls that.

The fibers of a running server, as the monitor page shows them:

- ``http accept``: takes a connection slot (at most ``max_connections``;
  beyond that, clients wait in the kernel's backlog), accepts, spawns
- ``http <client>``: one per connection (``connection.HttpConnection``);
- ``http timekeeper``: every tick (a quarter of the shortest timeout, at
  most a second) refreshes the coarse ``clock`` and the ``Date`` header,
  and cancels connections whose deadline passed; it sleeps while there
  are no connections, so an idle server makes no wake-ups at all;
- ``http stop``: reads the stop socket (see ``signals``);
- ``http lifespan``: the app's lifespan, if it has one.

Graceful shutdown (first SIGINT/SIGTERM, or ``Server.shutdown()``): stop
accepting, close idle connections, let requests in flight finish -- their
responses say ``Connection: close`` -- for up to ``graceful_timeout``
seconds, then cancel what is left; then the lifespan shutdown.  A second
signal cancels at once.
"""

from __future__ import annotations

import logging
import socket
import time

from .. import (
    ClosedResourceError,
    Event,
    Group,
    Semaphore,
    fail_after,
    move_on_after,
    sleep,
)
from .. import run as _run_scheduler
from .. import stats as _scheduler_stats
from ..net import Listener, SocketStream, listen_tcp, listen_unix
from ..record import Record
from .config import Config
from .connection import READ_SIZE, HttpConnection
from .lifespan import Lifespan
from .signals import _SIGNALS, SHUTDOWN, StopSignals
from .wire import http_date

__all__ = ["Server", "ServerStatistics", "serve", "run"]

log = logging.getLogger("poorio.http")
_monotonic = time.monotonic


class ServerStatistics(Record):
    """A frozen snapshot of a server: connections open and served, requests, refusals.

    ``connections``: open now (WebSockets included); ``websockets``: of
    those, upgraded; ``accepted``, ``requests``, ``rejected`` (answered
    with an error status by the server itself): counted since it started;
    ``max_connections``: its limit; ``closing``: shutting down.
    """

    __slots__ = ("connections", "websockets", "accepted", "requests", "rejected", "max_connections", "closing")


class Server:
    """An ASGI 3 HTTP/1.1 and WebSocket server; ``await server.serve(listener)`` runs it once.

    Counters the connections update in place: ``accepted``, ``requests``,
    ``rejected``, ``websockets``; ``started`` turns true once the lifespan
    startup is done and connections are accepted.  ``clock`` is the coarse
    ``time.monotonic()`` the deadlines are set against; ``date`` the
    current ``Date`` header value; ``state`` what the app's lifespan
    startup left; ``address`` the ``(host, port)`` requests see as ``server``.
    """

    def __init__(self, app, config: Config | None = None) -> None:
        self.app = app
        self.config = Config() if config is None else config
        self.connections = set()  # every HttpConnection still open
        self.accepted = self.requests = self.rejected = self.websockets = 0
        self.max_connections = 0  # known once serving: it depends on the scheduler's capacity
        self.started = False  # accepting: the lifespan startup is done
        self.closing = False
        self.clock = _monotonic()
        self._second = int(time.time())
        self.date = http_date(self._second)
        self.address = None
        self.state = {}
        self._stopping = Event()  # set when a shutdown is asked for
        self._idle = Event()  # set when the last connection closes during shutdown
        self._busy = Event()  # set while there are connections for the timekeeper to watch
        self._stop_signals = None
        self._stop_asked = False
        self._conns = None  # the group of connection fibers, while serving
        self._slots = None  # the semaphore of connection slots, while serving
        self._served = False
        config = self.config
        shortest = min(config.header_timeout, config.keep_alive_timeout, config.body_timeout, config.send_timeout)
        self._tick = min(1.0, shortest / 4)
        # Shared by every request scope (ASGI extensions): how an app reaches
        # the server it runs on -- the monitor page does.
        self.extensions = {"poorio.http": {"statistics": self.statistics, "stopping": self._stopping}}

    # -- the public surface ----------------------------------------------------------

    async def serve(self, listener) -> None:
        """Serve on ``listener`` until shut down; the listener is closed on the way out.

        ``listener``: a poorio ``Listener``, or a bound, listening
        ``socket.socket`` (TCP or Unix), which the server then owns.

        Raises:
            LifespanFailure: the app's lifespan startup failed.
            RuntimeError: this server has served already.
            OSError: from the listener, unmodified.
        """
        if self._served:
            raise RuntimeError("a Server serves once; make a new one")
        self._served = True
        listener = _as_listener(listener)
        config = self.config
        try:
            self.address = _address(listener.local_address)
            stop = self._stop_signals = StopSignals(config.handle_signals)
        except BaseException:
            listener.close()
            raise
        if self._stop_asked:
            stop.stop()
        stats = _scheduler_stats()
        self.max_connections = config.connection_limit(stats.capacity)
        if self.max_connections > stats.capacity - 2:  # the listener and the stop socket need slots too
            log.warning("max_connections=%d does not fit a pool of %d fds: expect PoolFullError at the limit",
                        self.max_connections, stats.capacity)  # fmt: skip
        slots = self._slots = Semaphore(self.max_connections)
        lifespan = Lifespan(self.app, config.lifespan)
        try:
            async with Group() as helpers:
                helpers.spawn(self._watch_stop, SocketStream(stop.reader), name="http stop")
                helpers.spawn(self._keep_time, name="http timekeeper")
                await lifespan.startup(helpers)
                self.state = lifespan.state
                log.info(
                    "serving on %s (%s backend, at most %d connections)",
                    _url(self.address), stats.backend, self.max_connections,
                )
                async with Group() as conns:
                    self._conns = conns
                    conns.spawn(self._accept, listener, conns, slots, name="http accept")
                    self.started = True
                    await self._stopping.wait()
                    await self._drain(listener)
                self._conns = None
                with fail_after(config.graceful_timeout):
                    await lifespan.shutdown()
                helpers.cancel_scope.cancel()
        finally:
            listener.close()
            stop.close()
            self.closing = True
        log.info("stopped after %d requests on %d connections", self.requests, self.accepted)

    def shutdown(self) -> None:
        """Begin a graceful shutdown.  Callable from any thread, before or while ``serve`` runs."""
        self._stop_asked = True
        stop = self._stop_signals
        if stop is not None:
            stop.stop()

    def statistics(self) -> ServerStatistics:
        """A snapshot of the server's counters (see ``ServerStatistics``)."""
        return ServerStatistics(
            connections=len(self.connections), websockets=self.websockets, accepted=self.accepted,
            requests=self.requests, rejected=self.rejected, max_connections=self.max_connections,
            closing=self.closing,
        )  # fmt: skip

    def connection_closed(self, conn: HttpConnection) -> None:
        """A connection's fiber is ending (the connection calls this): free its slot."""
        self.connections.discard(conn)
        self._slots.release()
        if not self.connections:
            self._busy.clear()
            if self.closing:
                self._idle.set()

    # -- the fibers ------------------------------------------------------------------

    async def _accept(self, listener: Listener, conns: Group, slots: Semaphore) -> None:
        while True:
            await slots.acquire()
            try:
                stream = await listener.accept()
            except ClosedResourceError:
                slots.release()
                return
            except OSError as error:  # the client vanished before accept (ECONNABORTED...), or worse
                slots.release()
                log.warning("accept() failed: %s", error)
                await sleep(0.01)
                continue
            try:
                client = _address(stream.remote_address)
            except OSError:  # gone already (ENOTCONN)
                stream.close()
                slots.release()
                continue
            conn = HttpConnection(self, stream, client)
            if not self.connections:  # the timekeeper was asleep: its clock and date are old
                self._refresh()
                self._busy.set()
            self.connections.add(conn)
            self.accepted += 1
            name = f"http {client[0]}:{client[1]}" if client else "http client"
            conn.fiber = conns.spawn(conn.run, name=name)

    async def _drain(self, listener: Listener) -> None:
        """Stop accepting; let busy connections finish within ``graceful_timeout``; cancel the rest."""
        log.info("shutting down: %d connections open", len(self.connections))
        self.closing = True
        listener.close()
        for conn in list(self.connections):
            conn.shutdown()
        with move_on_after(self.config.graceful_timeout) as scope:
            while self.connections:
                self._idle.clear()
                await self._idle.wait()
        if scope.cancelled_caught:
            log.warning("cancelling %d connections still busy after %.1f s",
                        len(self.connections), self.config.graceful_timeout)
        self._conns.cancel_scope.cancel()

    async def _keep_time(self) -> None:
        tick = self._tick
        while True:
            if not self.connections:
                await self._busy.wait()
            await sleep(tick)
            now = self._refresh()
            for conn in list(self.connections):
                if conn.deadline < now:
                    conn.expire()

    def _refresh(self) -> float:
        now = self.clock = _monotonic()
        second = int(time.time())
        if second != self._second:
            self._second = second
            self.date = http_date(second)
        return now

    async def _watch_stop(self, stream: SocketStream) -> None:
        try:
            while True:
                data = await stream.read_some(READ_SIZE)
                if not data:
                    return
                for code in data:
                    if code == SHUTDOWN or code in _SIGNALS:
                        self._stop(code)
        finally:
            stream.close()

    def _stop(self, code: int) -> None:
        if not self._stopping.is_set():
            if code != SHUTDOWN:
                log.info("signal %d: shutting down gracefully (again to stop at once)", code)
            self._stopping.set()
        elif code != SHUTDOWN and self._conns is not None:
            log.warning("signal %d again: cancelling every connection now", code)
            self._conns.cancel_scope.cancel()


def _as_listener(listener) -> Listener:
    if isinstance(listener, Listener):
        return listener
    if isinstance(listener, socket.socket):
        tcp = listener.family in (socket.AF_INET, getattr(socket, "AF_INET6", socket.AF_INET))
        return Listener(listener, nodelay=tcp)
    raise TypeError(f"serve() needs a poorio Listener or a listening socket, not {listener!r}")


def _address(address):
    """An ASGI ``(host, port)`` from a socket address; None for a Unix socket's."""
    if isinstance(address, tuple) and len(address) >= 2:
        return (address[0], address[1])
    return None


def _url(address) -> str:
    if address is None:
        return "a Unix socket"
    host, port = address
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(app, listener, config: Config | None = None) -> Server:
    """Serve ``app`` on ``listener`` (a poorio ``Listener`` or a listening socket) until shut down.

    The one entry point for a listener bound elsewhere.  Returns the
    finished ``Server`` (its counters stay readable).

    Raises:
        LifespanFailure: the app's lifespan startup failed.
        OSError: from the listener, unmodified.
    """
    server = Server(app, config)
    await server.serve(listener)
    return server


def run(app, host: str = "127.0.0.1", port: int = 8000, *, config: Config | None = None, uds: str | None = None,
        capacity: int | None = None, backend: str | None = None) -> None:
    """Bind ``host``:``port`` (or the Unix socket ``uds``) and serve ``app`` on a new scheduler until shut down.

    ``capacity`` is the scheduler's pool size (the connection limit
    follows from it unless ``config.max_connections`` says otherwise);
    ``backend`` forces a readiness backend.

    Raises:
        OSError: binding failed (``EADDRINUSE``...), unmodified.
        LifespanFailure: the app's lifespan startup failed.
    """

    async def main() -> None:
        listener = await (listen_unix(uds) if uds else listen_tcp(host, port))
        await serve(app, listener, config)

    main.__qualname__ = "http server"  # the name the monitor shows for this fiber
    options = {} if capacity is None else {"capacity": capacity}
    _run_scheduler(main, backend=backend, **options)
