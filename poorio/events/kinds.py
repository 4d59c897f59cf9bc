"""The event layer's vocabulary: the kinds, the reasons, the ``EventRecord`` and the statistics snapshot.

``poorio.events`` re-exports every public name here; import them from there.
"""

from __future__ import annotations

import math

from ..record import Record

__all__ = [
    "EventRecord",
    "EventStatistics",
    "VIRTUAL",
    "VIRTUAL_PERSISTENT",
    "TIMER",
    "TIMER_PERIODIC",
    "READ",
    "READ_PERSISTENT",
    "WRITE",
    "WRITE_PERSISTENT",
    "SIGNAL",
    "SIGNAL_PERSISTENT",
    "KINDS",
    "REASON_READ",
    "REASON_WRITE",
    "REASON_TRIGGERED",
    "REASON_TIMEOUT",
    "REASON_SIGNAL",
]

# The public kinds: one-letter strings, as the LuaEvents spec has them.
VIRTUAL, VIRTUAL_PERSISTENT = "v", "V"
TIMER, TIMER_PERIODIC = "t", "T"
READ, READ_PERSISTENT = "r", "R"
WRITE, WRITE_PERSISTENT = "w", "W"
SIGNAL, SIGNAL_PERSISTENT = "s", "S"
KINDS = "vVtTrRwWsS"

# The public reasons an event is delivered for.
REASON_READ = "read"
REASON_WRITE = "write"
REASON_TRIGGERED = "triggered"
REASON_TIMEOUT = "timeout"
REASON_SIGNAL = "signal"

# Internally a kind is a small int and a persistence flag: no string compares.
_VIRTUAL, _TIMER, _READ, _WRITE, _SIGNAL = range(5)
_KINDS = {
    VIRTUAL: (_VIRTUAL, False),
    VIRTUAL_PERSISTENT: (_VIRTUAL, True),
    TIMER: (_TIMER, False),
    TIMER_PERIODIC: (_TIMER, True),
    READ: (_READ, False),
    READ_PERSISTENT: (_READ, True),
    WRITE: (_WRITE, False),
    WRITE_PERSISTENT: (_WRITE, True),
    SIGNAL: (_SIGNAL, False),
    SIGNAL_PERSISTENT: (_SIGNAL, True),
}


def _seconds(value, what: str) -> float:
    """``value`` as finite, non-negative seconds; ``what`` names it in the error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {value!r}")
    value = float(value)
    if not value >= 0.0 or value == math.inf:  # also rejects NaN
        raise ValueError(f"{what} must be a finite number of seconds >= 0, not {value!r}")
    return value


class EventRecord:
    """One event in an ``EventSet`` -- and the record the iterator yields when it fires.

    Public attributes (read them; change them through ``EventSet.set``):
    ``id`` (int, unique within its set), ``kind`` (one of ``KINDS``),
    ``source``, ``context``, ``reason`` (why it was last delivered, or None),
    ``missed`` (periods a periodic timer skipped before this delivery, else
    0) and ``deadline`` (``time.monotonic()`` seconds at which its timer or
    timeout is next due -- for a delivered one-shot timer, when it was due --
    or None).  A persistent event yields the same record on every delivery.
    """

    __slots__ = (
        "id", "kind", "source", "context", "reason", "missed", "deadline",
        "_type",     # _VIRTUAL ... _SIGNAL
        "_persist",  # uppercase kind: stays until deleted
        "_fd",       # the fd of an 'r'/'w' event, the number of an 's' event, else -1
        "_interval",  # a timer's seconds; another event's timeout (None: none)
        "_why",      # the reason it is queued for delivery (or posted), None when not queued
        "_timer",    # the notifier's handle of its armed timer or timeout, or None
        "_live",     # False once deleted; never set back
        "_keep",     # a one-shot 'r'/'w' event that leaves its fd registered once delivered
    )  # fmt: skip

    def __init__(self, eid: int, kind: str, source, context, code: int, persist: bool) -> None:
        self.id = eid
        self.kind = kind
        self.source = source
        self.context = context
        self.reason = None
        self.missed = 0
        self.deadline = None
        self._type = code
        self._persist = persist
        self._fd = -1
        self._interval = None
        self._why = None
        self._timer = None
        self._live = True
        self._keep = False

    def __repr__(self) -> str:
        extra = f" reason={self.reason!r}" if self.reason is not None else ""
        if self.missed:
            extra += f" missed={self.missed}"
        if not self._live:
            extra += " deleted"
        return f"<EventRecord {self.id} {self.kind!r} source={self.source!r} context={self.context!r}{extra}>"


class EventStatistics(Record):
    """A frozen snapshot of an ``EventSet``: its backend and what it holds."""

    __slots__ = ("backend", "capacity", "events", "fds", "timers", "pending", "signals")
