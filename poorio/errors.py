"""poorio's own exception types — every one of them, in one place.

poorio raises these only for conditions that are poorio's own: a pool that is
full, a resource closed while a fiber waited on it, a fiber cancelled.  Errors
that come from the operating system are raised as the ``OSError`` the kernel
produced, with its real ``errno`` and message, never wrapped.

Cancellation derives from ``BaseException`` (like ``KeyboardInterrupt``) so
that a stray ``except Exception:`` cannot swallow it; everything else derives
from ``PoorioError``, an ``Exception``.
"""

__all__ = [
    "PoorioError",
    "PoolFullError",
    "AlreadyRegisteredError",
    "NotRegisteredError",
    "BackendUnavailableError",
    "ClosedResourceError",
    "BusyResourceError",
    "DeadlockError",
    "EndOfChannel",
    "ChannelClosedError",
    "LimitOverrunError",
    "IncompleteReadError",
    "Cancelled",
]


class PoorioError(Exception):
    """Base class of every poorio error that is not cancellation."""


class PoolFullError(PoorioError):
    """A ``SocketIoPool`` already holds as many fds as its fixed capacity."""


class AlreadyRegisteredError(PoorioError):
    """An fd (or an event of the same kind on that fd) is already registered."""


class NotRegisteredError(PoorioError, KeyError):
    """The fd or event id is not registered.  Also a ``KeyError``."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class BackendUnavailableError(PoorioError):
    """The requested multiplexer backend does not exist or cannot run here."""


class ClosedResourceError(PoorioError):
    """The resource was closed, possibly while a fiber was waiting on it."""


class BusyResourceError(PoorioError):
    """Another fiber is already waiting on this resource in the same direction."""


class DeadlockError(PoorioError):
    """No fiber can ever run again: nothing is ready, pending or registered."""


class EndOfChannel(PoorioError):
    """A channel or queue was closed and holds no more values."""


class ChannelClosedError(PoorioError):
    """A value was put on a channel or queue that is closed."""


class LimitOverrunError(PoorioError):
    """A delimiter was not found within the maximum size a reader allows."""


class IncompleteReadError(PoorioError, EOFError):
    """The stream ended before the requested amount of data arrived.

    ``partial`` holds the bytes that did arrive.
    """

    def __init__(self, partial: bytes, expected: "int | None") -> None:
        super().__init__(
            f"stream ended after {len(partial)} bytes; expected "
            + (f"{expected}" if expected is not None else "a delimiter")
        )
        self.partial = partial
        self.expected = expected


class Cancelled(BaseException):
    """Raised inside a fiber at the suspension point where it was cancelled.

    Do not swallow it: clean up and let it propagate, so the cancel scope or
    fiber that asked for the cancellation can see it arrive.
    """
