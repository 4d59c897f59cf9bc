"""poorio: zero-dependency, pure-Python event-driven IO.

ctypes bindings to the OS multiplexers (``poorio.platform``), a
LuaEvents-style event set (``poorio.events``), fibers, Concurrent-ML
operations and IO objects on top.
"""

from __future__ import annotations

from .errors import *  # noqa: F401,F403
from .errors import __all__ as _errors_all

__version__ = "0.1.0"

__all__ = list(_errors_all)
