"""The shared ctypes plumbing: libc loaded once, errno turned into OSError.

Every mechanism module binds its functions here, once, with ``argtypes`` and
``restype`` set, so that a call on the hot path is one foreign call and no
Python-level argument conversion guesswork.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["libc", "bind", "os_error", "fileno", "POINTER_SIZE", "MULTIARCH"]

POINTER_SIZE = ctypes.sizeof(ctypes.c_void_p)


def _multiarch() -> str:
    """The interpreter's target triplet, e.g. ``x86_64-linux-gnu``.

    We ask the interpreter, not the kernel: ``platform.machine()`` says
    ``x86_64`` for a 32-bit Python on a 64-bit kernel, and ``armv7l`` for both
    ARM ABIs.  CPython records its triplet in ``sys.implementation``; PyPy and
    some builds record it only in sysconfig; Windows builds record none.
    """
    arch = getattr(sys.implementation, "_multiarch", None)
    if arch:
        return str(arch)
    if sys.platform == "win32":
        # No triplet is recorded; the compiler string names the build's target,
        # as sysconfig.get_platform() reads it -- but importing sysconfig pulls
        # in threading, and platform.machine() asks WMI on 3.12+ (slow, and it
        # crashes Wine 8) for the host's machine, not the interpreter's.
        compiler = sys.version.lower()
        for tag, name in (("(amd64)", "win-amd64"), ("(arm64)", "win-arm64"), ("(arm)", "win-arm32")):
            if tag in compiler:
                return name
        return "win32"
    import sysconfig  # slow to import; only reached where the fast path is missing

    arch = sysconfig.get_config_var("MULTIARCH")
    if arch:
        return str(arch)
    import platform

    return f"{platform.machine()}-unknown"


MULTIARCH = _multiarch()

if sys.platform == "win32":  # pragma: no cover - the Windows backend binds ws2_32 itself
    libc = None
else:
    # dlopen(NULL): the process's global symbols, which include libc, on glibc,
    # musl and the BSDs alike -- without find_library's subprocess calls.
    libc = ctypes.CDLL(None, use_errno=True)


def bind(name: str, restype, *argtypes):
    """Look up ``name`` in libc and fix its signature; ``None`` if absent."""
    try:
        func = getattr(libc, name)
    except AttributeError:
        return None
    func.restype = restype
    func.argtypes = argtypes
    return func


def os_error() -> OSError:
    """The ``OSError`` for the errno the last failed libc call left behind.

    Python picks the right subclass (``BlockingIOError``, ``FileNotFoundError``
    ...) from the errno, exactly as the stdlib's own calls do.
    """
    err = ctypes.get_errno()
    return OSError(err, os.strerror(err))


def fileno(obj) -> int:
    """The fd of an int or of an object with ``fileno()``.

    Raises:
        ValueError: not an int nor an object with ``fileno()``, or the fd is
            negative (a closed object) or beyond what an fd can be (a C int).
    """
    if isinstance(obj, int) and not isinstance(obj, bool):
        fd = int(obj)
    else:
        try:
            fd = obj.fileno()
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"invalid file object: {obj!r}") from None
        if isinstance(fd, bool) or not isinstance(fd, int):
            raise ValueError(f"invalid file object: {obj!r} (its fileno() is {fd!r})")
    if not 0 <= fd <= _FD_MAX:
        raise ValueError(f"invalid file descriptor: {fd}")
    return fd


_FD_MAX = 2**31 - 1  # fds are C ints: a larger number would be truncated by the kernel's ABI
