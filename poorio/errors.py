"""poorio's own exception types — every one of them, in one place.

poorio raises these only for conditions that are poorio's own: a pool that is
full, a resource closed while a fiber waited on it, a fiber cancelled.  Errors
that come from the operating system are raised as the ``OSError`` the kernel
produced, with its real ``errno`` and message, never wrapped.

Cancellation derives from ``BaseException`` (like ``KeyboardInterrupt``) so
that a stray ``except Exception:`` cannot swallow it; everything else derives
from ``PoorioError``, an ``Exception``.
"""

import builtins

__all__ = [
    "PoorioError",
    "PoolFullError",
    "AlreadyRegisteredError",
    "NotRegisteredError",
    "BackendUnavailableError",
    "ClosedResourceError",
    "BrokenResourceError",
    "BusyResourceError",
    "DeadlockError",
    "EndOfChannel",
    "ChannelClosedError",
    "LimitOverrunError",
    "IncompleteReadError",
    "MessageTooLargeError",
    "MalformedMessageError",
    "ActorExitedError",
    "ActorFailedError",
    "Cancelled",
    "BaseExceptionGroup",
    "ExceptionGroup",
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


class BrokenResourceError(ClosedResourceError):
    """A ``write_all`` was interrupted part-way, so the stream's write side is unusable.

    A ``ClosedResourceError`` too: code that handles a closed stream handles this.
    """


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


class MessageTooLargeError(PoorioError, ValueError):
    """An actor message encodes to more bytes than the limit (``poorio.actors.MAX_MESSAGE_SIZE``)."""


class MalformedMessageError(PoorioError, ValueError):
    """Bytes received as an actor message or frame do not decode (corrupt, truncated or hostile)."""


class ActorExitedError(PoorioError):
    """The actor has ended (or its process is gone): it takes no more messages."""


class ActorFailedError(PoorioError):
    """An actor ended with an exception, or its process died; raised by ``join()``.

    ``remote_type`` and ``remote_message`` name the actor's exception (as
    text: nothing received from another process is turned back into code),
    ``remote_traceback`` is its formatted traceback, and ``exitcode`` the
    process's exit status when the process itself died (``-9``: killed by
    SIGKILL), else None.
    """

    def __init__(self, message: str, remote_type: str = "", remote_message: str = "",
                 remote_traceback: str = "", exitcode: "int | None" = None) -> None:
        super().__init__(message)
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback
        self.exitcode = exitcode

    def __str__(self) -> str:
        text = str(self.args[0]) if self.args else ""
        if self.remote_traceback:
            text += "\n\nThe actor's traceback:\n" + self.remote_traceback.rstrip("\n")
        return text


class Cancelled(BaseException):
    """Raised inside a fiber at the suspension point where it was cancelled.

    Do not swallow it: clean up and let it propagate, so the cancel scope or
    fiber that asked for the cancellation can see it arrive.
    """


# Several errors at once -- a Group whose children failed.  Python 3.11+ has
# these built in (and ``except*``); on 3.9/3.10 (and PyPy 3.9) poorio defines
# a small equivalent with the same constructor and the same ``message``,
# ``exceptions``, ``subgroup``, ``split`` and ``derive``: catch
# ``poorio.ExceptionGroup`` and look at ``.exceptions``.
try:
    BaseExceptionGroup = builtins.BaseExceptionGroup
    ExceptionGroup = builtins.ExceptionGroup
except AttributeError:  # Python < 3.11

    class BaseExceptionGroup(BaseException):
        """Several exceptions raised together (fallback for Python < 3.11)."""

        def __new__(cls, message, exceptions):
            exceptions = tuple(exceptions)
            if not exceptions:
                raise ValueError("an exception group needs at least one exception")
            if cls is BaseExceptionGroup and all(isinstance(e, Exception) for e in exceptions):
                cls = ExceptionGroup
            self = super().__new__(cls, message, exceptions)
            self.message = message
            self.exceptions = exceptions
            return self

        def __init__(self, message, exceptions):
            super().__init__(message, tuple(exceptions))

        def __str__(self) -> str:
            n = len(self.exceptions)
            return f"{self.message} ({n} sub-exception{'s' if n != 1 else ''})"

        def derive(self, exceptions):
            return BaseExceptionGroup(self.message, exceptions)

        def subgroup(self, condition):
            """The group of the leaves matching ``condition`` (a type, tuple or predicate), or None."""
            return self.split(condition)[0]

        def split(self, condition):
            """``(matching, rest)``: two groups (or None) partitioning the leaves."""
            if isinstance(condition, type) or isinstance(condition, tuple):
                types = condition
                condition = lambda e: isinstance(e, types)  # noqa: E731
            if condition(self):
                return self, None
            match, rest = [], []
            for exc in self.exceptions:
                if isinstance(exc, BaseExceptionGroup):
                    m, r = exc.split(condition)
                    if m is not None:
                        match.append(m)
                    if r is not None:
                        rest.append(r)
                elif condition(exc):
                    match.append(exc)
                else:
                    rest.append(exc)
            return (
                self.derive(match) if match else None,
                self.derive(rest) if rest else None,
            )

    class ExceptionGroup(BaseExceptionGroup, Exception):
        """Several ``Exception``s raised together (fallback for Python < 3.11)."""

        def __new__(cls, message, exceptions):
            exceptions = tuple(exceptions)
            for exc in exceptions:
                if not isinstance(exc, Exception):
                    raise TypeError(f"ExceptionGroup cannot wrap {exc!r}; use BaseExceptionGroup")
            return super().__new__(cls, message, exceptions)
