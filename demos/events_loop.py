"""An event loop with no fibers: the LuaEvents example on poorio's EventSet, plus a socket and a signal.

The LuaEvents proposal shows a one-shot timer, a periodic timer and a
virtual event triggered from inside the loop.  This version runs the same
loop, adds a socket that becomes readable and a SIGUSR1 the program sends to
itself -- all five arrive as ordinary events through one ``for`` loop -- and
then stops by itself after five ticks.  Run it::

    python demos/events_loop.py
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from poorio.events import EventSet  # noqa: E402 (after the path tweak, so it runs from a checkout)

TICK = 0.1  # seconds between ticks of the periodic timer
TICKS = 5


def main() -> None:
    start = time.monotonic()

    def say(text: str) -> None:
        print(f"{time.monotonic() - start:5.2f}s  {text}", flush=True)

    reader, writer = socket.socketpair()
    with EventSet() as events:
        # The spec's three events; strings as contexts keep it simple.
        events.add("t", 2.5 * TICK, "one-shot timer expired")
        tid = events.add("T", TICK, "periodic timer triggered")
        vid = events.add("v", None, "virtual event triggered")
        # And two more kinds: a readable socket and a signal.
        rid = events.add("R", reader, "socket readable")
        sid = events.add("S", signal.SIGUSR1, "SIGUSR1 caught")

        ticks = 0
        # No argument: block while a timer is pending; the loop ends when
        # the set is empty.
        for ev in events():
            say(f"{ev.context} ({ev.reason})")
            if ev.id == tid:
                ticks += ev.missed + 1
                if ev.missed:
                    say(f"  (the loop fell behind: {ev.missed} ticks skipped)")
                if ticks == 1:
                    events.trigger(vid)
                elif ticks == 2:
                    writer.send(b"ping")
                elif ticks == 3:
                    os.kill(os.getpid(), signal.SIGUSR1)
                elif ticks >= TICKS:
                    for eid in (tid, rid, sid):
                        events.delete(eid)
            elif ev.id == vid:
                events.add("t", TICK / 2, "half a tick later ...")
            elif ev.id == rid:
                say(f"  read {reader.recv(64)!r}")
        say(f"the set is empty ({len(events)} events): done")
    reader.close()
    writer.close()


if __name__ == "__main__":
    main()
