"""The ASGI ``lifespan`` protocol: the app's startup before the first request, its shutdown after the last.

The app runs once with a ``lifespan`` scope, in a fiber of its own for the
server's whole life.  ``startup()`` hands it ``lifespan.startup`` and
waits for ``lifespan.startup.complete`` (or ``.failed``); ``shutdown()``
hands it ``lifespan.shutdown`` and waits likewise.  The scope's ``state``
dict is what the app may fill at startup; every request scope gets a
shallow copy of it.

With ``lifespan="auto"`` an app that raises before answering startup is
taken not to support lifespan (plain apps that reject unknown scope
types do that): logged at debug level, and serving goes on.  With
``"on"`` that is an error, and a failed startup always is.
"""

from __future__ import annotations

import logging

from .. import Event, Queue
from .wire import ASGI_VERSION

__all__ = ["Lifespan", "LifespanFailure"]

log = logging.getLogger("poorio.http")


class LifespanFailure(RuntimeError):
    """The app's lifespan startup or shutdown failed (its message says why)."""


class Lifespan:
    """The app's lifespan fiber and the two steps the server takes through it."""

    __slots__ = ("app", "mode", "state", "_inbox", "_answer", "_answered", "_fiber", "_supported", "_ended")

    def __init__(self, app, mode: str) -> None:
        self.app = app
        self.mode = mode  # "auto", "on" or "off"
        self.state = {}  # the scope's state: what the app keeps for its requests
        self._inbox = Queue(2)  # lifespan.startup, then lifespan.shutdown
        self._answer = None  # the app's last lifespan.* message, or the exception it ended with
        self._answered = Event()
        self._fiber = None
        self._supported = mode != "off"
        self._ended = False

    async def startup(self, group) -> None:
        """Start the lifespan fiber in ``group`` and wait until the app has started.

        Raises:
            LifespanFailure: the app reported ``lifespan.startup.failed``, or
                (with ``lifespan="on"``) it does not speak lifespan.
        """
        if not self._supported:
            return
        self._fiber = group.spawn(self._run, name="http lifespan")
        await self._step("lifespan.startup")

    async def shutdown(self) -> None:
        """Tell the app to shut down and wait until it has (if it started).

        Raises:
            LifespanFailure: the app reported ``lifespan.shutdown.failed`` or raised.
        """
        if self._supported and not self._ended:
            await self._step("lifespan.shutdown")

    async def _step(self, kind: str) -> None:
        self._answered.clear()
        await self._inbox.put({"type": kind})
        await self._answered.wait()
        answer = self._answer
        if isinstance(answer, BaseException):
            if kind == "lifespan.startup" and self.mode == "auto":
                log.debug("the app does not support the lifespan protocol (%r); serving without it", answer)
                self._supported = False
                return
            raise LifespanFailure(f"the app's lifespan failed at {kind}: {answer!r}") from answer
        if answer is None:
            message = f"the app's lifespan returned at {kind} without answering"
            if kind == "lifespan.startup" and self.mode == "auto":
                log.debug("%s; serving without it", message)
                self._supported = False
                return
            raise LifespanFailure(message)
        if answer["type"] != kind + ".complete":
            raise LifespanFailure(f"the app's {kind} failed: {answer.get('message', '')}")

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except Exception as error:
            if self._answered.is_set():  # nobody is waiting for an answer: say it here
                log.error("the app's lifespan failed while the server ran", exc_info=error)
            self._answer = error
        else:
            if not self._answered.is_set():
                self._answer = None
        finally:
            self._ended = True
            self._answered.set()

    async def _receive(self) -> dict:
        return await self._inbox.get()

    async def _send(self, message: dict) -> None:
        kind = message["type"]
        if kind not in (
            "lifespan.startup.complete", "lifespan.startup.failed",
            "lifespan.shutdown.complete", "lifespan.shutdown.failed",
        ):  # fmt: skip
            raise RuntimeError(f"unexpected ASGI lifespan message {kind!r}")
        self._answer = message
        self._answered.set()
