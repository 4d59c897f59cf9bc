"""An event set after the LuaEvents API: fd readiness, timers, virtual events and signals as one stream of events.

This is poorio's notification layer.  An ``EventSet`` holds *events*, each
of a one-letter kind (lowercase: one-shot, deleted once delivered;
uppercase: persistent, deleted only by ``delete``):

=========  ==========================  =====================================
kind       source                      fires (``reason``)
=========  ==========================  =====================================
``v`` V    initial state (truthy:      when ``trigger``-ed (``triggered``)
           triggered at once)
``t`` T    seconds (``T`` repeats)     when due (``timeout``)
``r`` R    an fd or ``fileno()`` obj   when readable (``read``)
``w`` W    an fd or ``fileno()`` obj   when writable (``write``)
``s`` S    a signal number             when the signal arrives (``signal``)
=========  ==========================  =====================================

Any event but a timer may carry a ``timeout``: if it has not fired within
that many seconds it is delivered with reason ``timeout`` (a persistent
event's timeout re-arms whenever it fires).  Each event has a ``context``
the iterator hands back -- a callback, a fiber, anything.

The set is iterated::

    for ev in events(block):        # True, False, seconds, or None
        ev.id, ev.reason, ev.source, ev.context

It is usable on its own, as an event loop, and it is what the fiber
scheduler dispatches from: the parked fiber is the event's context.  What it
does *not* do: call anything.  Dispatching is the caller's business.
"""

from __future__ import annotations

from ..platform import default_capacity
from .eventset import EventSet
from .kinds import *  # noqa: F401,F403
from .kinds import __all__ as _kinds_all
from .notifier import KeptFd, Notifier, NotifierStatistics

__all__ = ["EventSet", "Notifier", "NotifierStatistics", "KeptFd", "default_capacity", *_kinds_all]
