"""What both proactors (``uring.Ring``, ``iocp.Port``) share: pinned buffers, timeouts, the bookkeeping.

A proactor hands the kernel raw addresses that must stay valid until the
operation completes.  ``pin_writable``/``pin_readable`` turn a Python buffer
into (keeper, address, size), where the keeper holds a buffer export --
so CPython refuses to resize or free the memory while it lives -- or, for
read-only data, a private copy.  The proactor keeps the keeper until the
completion has been handed out.
"""

from __future__ import annotations

import ctypes
import math
import time

from ..errors import AlreadyRegisteredError, ClosedResourceError, PoolFullError

__all__ = ["pin_writable", "pin_readable", "nanoseconds", "ProactorBase"]

_char_from = ctypes.c_char.from_buffer
_address = ctypes.addressof
_char_p = ctypes.c_char_p
_void_p_from = ctypes.c_void_p.from_buffer


def pin_writable(buffer) -> tuple:
    """(keeper, address, size) of a writable, contiguous buffer, pinned while keeper lives.

    Raises:
        TypeError: the buffer is read-only (or not a buffer at all).
        ValueError: the buffer is not contiguous.
    """
    if type(buffer) is bytearray and buffer:  # the common case, three times faster
        keeper = _char_from(buffer)
        return keeper, _address(keeper), len(buffer)
    view = memoryview(buffer)
    if view.readonly:
        raise TypeError("this operation writes into its buffer: it must be writable (a bytearray, say)")
    if not view.c_contiguous:
        raise ValueError("the buffer must be contiguous")
    size = view.nbytes
    if not size:
        return None, 0, 0
    keeper = ctypes.c_char.from_buffer(view.cast("B"))  # holds the export: no resize, no free
    return keeper, ctypes.addressof(keeper), size


def pin_readable(data) -> tuple:
    """(keeper, address, size) of bytes to send: zero-copy if writable, else a private copy."""
    if type(data) is not bytes:
        view = memoryview(data)
        if not view.readonly:
            return pin_writable(view)
        data = view.tobytes()
    if not data:
        return None, 0, 0
    # A c_char_p holds the bytes object (CPython points into it; PyPy into a
    # copy it keeps); the pointer it stores is read back as an int.
    keeper = _char_p(data)
    return keeper, _void_p_from(keeper).value, len(data)


def nanoseconds(timeout: float | None) -> int | None:
    """Seconds (None or inf: forever) to whole nanoseconds, rounded up; negative is 0.

    Raises:
        ValueError: ``timeout`` is NaN.
    """
    if timeout is None or timeout == math.inf:
        return None
    if timeout != timeout:
        raise ValueError("timeout must be a number of seconds, not NaN")
    return max(0, math.ceil(timeout * 1e9))


class ProactorBase:
    """What ``uring.Ring`` and ``iocp.Port`` share: tokens, capacity, handing out completions, waiting.

    A subclass sets ``backend`` and ``noun`` and supplies ``_collect(ns)``:
    wait at most ``ns`` nanoseconds (``None``: as long as it takes; 0: not at
    all) for the kernel's completions and append them to ``self._done`` as
    ``(token, result, flags)``; and ``_release()``: cancel and drain
    whatever is in flight and free the kernel object.
    """

    backend = "abstract"
    noun = "proactor"

    def __init__(self, capacity: int) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, not {capacity!r}")
        self.capacity = capacity
        self._tokens: dict = {}  # token -> the key of its operation in flight
        self._done: list = []  # completions collected but not yet handed out
        self._closed = False

    def _admit(self, token) -> None:
        """Check that one more operation, named ``token``, may be submitted."""
        if self._closed:
            raise ClosedResourceError(f"the {self.noun} is closed")
        if token in self._tokens:
            raise AlreadyRegisteredError(f"token {token!r} already has an operation in flight")
        if len(self._tokens) >= self.capacity:
            raise PoolFullError(f"the {self.noun} is full: {self.capacity} operations are in flight")

    def __len__(self) -> int:
        """Operations in flight: submitted, completion not yet handed out by ``wait``."""
        return len(self._tokens)

    @property
    def closed(self) -> bool:
        return self._closed

    def statistics(self):
        """Backend, capacity (operations in flight at most) and operations in flight now."""
        from ._base import PoolStatistics

        return PoolStatistics(self.backend, self.capacity, len(self._tokens))

    def wait(self, timeout: float | None = None) -> list:
        """Submit what is queued and wait up to ``timeout`` seconds for completions.

        Returns ``[(token, result, flags), ...]`` -- every completion there
        is, oldest first, or ``[]`` when the time ran out.  ``None`` waits
        forever, 0 not at all; a signal does not shorten the wait (PEP 475).

        Raises:
            ClosedResourceError: the proactor is closed.
            OSError: the kernel refused (io_uring: ``EEXIST`` from a thread
                that does not own the ring).
        """
        if self._closed:
            raise ClosedResourceError(f"the {self.noun} is closed")
        ns = nanoseconds(timeout)
        if ns == 0 or self._done:
            self._collect(0)
            return self._take()
        deadline = None if ns is None else time.monotonic() + ns / 1e9
        while True:
            self._collect(ns)
            if self._done:
                return self._take()
            if deadline is not None:
                ns = nanoseconds(deadline - time.monotonic())
                if ns == 0:
                    return []

    def completions(self) -> list:
        """The completions already collected (by a pool's ``cycle``, say), without asking the kernel."""
        return self._take()

    def _take(self) -> list:
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        """Cancel everything in flight, wait until the kernel is done with every buffer, release; idempotent."""
        if not self._closed:
            self._closed = True
            self._release()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._tokens)}/{self.capacity} in flight"
        return f"<{type(self).__name__} {self.backend} {state}>"

    def _collect(self, ns: int | None) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _release(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
