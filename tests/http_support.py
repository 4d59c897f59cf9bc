"""What the HTTP tests share: a live poorio.http server in a thread, raw-socket clients, small ASGI apps.

Importing this skips the importing test module when h11 and wsproto (the
``poorio[http]`` extra) are not installed -- the cross-architecture and
other-Python stages of CI install only the core's test tools.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time

import pytest

pytest.importorskip("h11", reason="poorio.http needs the 'http' extra (h11, wsproto): pip install -e '.[test]'")
pytest.importorskip("wsproto", reason="poorio.http needs the 'http' extra (h11, wsproto): pip install -e '.[test]'")

import poorio  # noqa: E402
import poorio.http  # noqa: E402
from asgi_apps import hello_app, lifespan_ok, read_body  # noqa: E402,F401 (for the tests)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAIT = 10.0  # seconds: a safety net for anything a test waits for; tests take a fraction of it


class LiveServer:
    """``poorio.http`` serving ``app`` on 127.0.0.1 in a thread of its own, for one ``with`` block.

    ``server`` is the ``poorio.http.Server``; ``url`` its base URL.  Leaving
    the block shuts it down gracefully and waits for the thread, so no fd
    outlives the test; an error the server raised is raised there.
    """

    def __init__(self, app, **settings) -> None:
        settings.setdefault("handle_signals", False)
        self.capacity = settings.pop("capacity", None)
        self.server = poorio.http.Server(app, poorio.http.Config(**settings))
        self.port = None
        self.error = None
        self._thread = threading.Thread(target=self._main, name="poorio.http test server", daemon=True)

    def _main(self) -> None:
        async def main():
            listener = await poorio.listen_tcp("127.0.0.1", 0)
            self.port = listener.local_address[1]
            await self.server.serve(listener)

        main.__qualname__ = "http server"  # as python -m poorio.http names it (the monitor shows it)
        try:
            options = {} if self.capacity is None else {"capacity": self.capacity}
            poorio.run(main, **options)
        except BaseException as error:  # handed to the test's thread by __exit__/stop
            self.error = error

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + WAIT
        while not self.server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.002)
        if not self.server.started:
            self._thread.join(WAIT)
            if self.error is not None:
                raise self.error
            raise RuntimeError("the server did not start")
        return self

    def stop(self) -> None:
        """Shut down gracefully and wait for the thread; raise what the server raised."""
        self.server.shutdown()
        self._thread.join(WAIT)
        if self._thread.is_alive():
            raise RuntimeError("the server did not stop within the safety timeout")
        if self.error is not None:
            raise self.error

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def wait_for(self, predicate, what: str) -> None:
        """Wait until ``predicate(server.statistics())`` holds (polling; a safety timeout)."""
        deadline = time.monotonic() + WAIT
        while not predicate(self.server.statistics()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.server.statistics()!r}")
            time.sleep(0.005)


def connect(port: int) -> socket.socket:
    """A blocking client socket to the server, with a safety timeout."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection."""
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def read_response(sock: socket.socket, buffered: bytearray, method: str = "GET") -> tuple:
    """One response ``(status, headers dict, body)`` read with h11 from ``sock``; ``buffered`` carries leftovers.

    ``method``: the request's, which decides whether the response has a body.
    """
    import h11

    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target="/", headers=[("host", "x")]))  # h11 client state: a request went out
    conn.send(h11.EndOfMessage())
    if buffered:  # (an empty receive_data would mean end of stream)
        conn.receive_data(bytes(buffered))
        buffered.clear()
    status, headers, body = None, None, bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
            continue
        if isinstance(event, h11.InformationalResponse):
            continue
        if isinstance(event, h11.Response):
            status, headers = event.status_code, {k.decode(): v.decode() for k, v in event.headers}
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            buffered += conn.trailing_data[0]
            return status, headers, bytes(body)


@contextlib.contextmanager
def raw(port: int):
    """A connected blocking socket, closed afterwards."""
    sock = connect(port)
    try:
        yield sock
    finally:
        sock.close()


def python_env(**extra) -> dict:
    """The environment for a child Python that must import this checkout's poorio."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    env.update(extra)
    return env


PY = sys.executable
