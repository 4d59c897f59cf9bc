"""What both proactors (``uring.Ring``, ``iocp.Port``) share: pinned buffers and kernel timeouts.

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

__all__ = ["pin_writable", "pin_readable", "nanoseconds"]

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
