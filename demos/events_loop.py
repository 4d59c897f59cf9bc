"""An event loop with no fibers: the LuaEvents example on poorio's EventSet, plus a socket and a signal.

The LuaEvents proposal shows a one-shot timer, a periodic timer and a
virtual event triggered from inside the loop.  This version runs the same
loop, adds a socket that becomes readable and a SIGUSR1 the program sends to
itself -- all five arrive as ordinary events through one ``for`` loop.  After
five ticks it deletes the periodic timer; every other event is one-shot, so
the set empties and the loop ends by itself.  Run it::

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
        rid = events.add("r", reader, "socket readable")
        events.add("s", signal.SIGUSR1, "SIGUSR1 caught")

        ticks = 0
        # No argument: block while a timer is pending; the loop ends when
        # the set is empty.
        for ev in events():
            say(f"{ev.context} ({ev.reason})")
            if ev.id == tid:
                before, ticks = ticks, ticks + ev.missed + 1
                if ev.missed:
                    say(f"  (the loop fell behind: {ev.missed} ticks skipped)")
                # Act on every tick passed, even one reported as missed.
                if before < 1 <= ticks:
                    events.trigger(vid)
                if before < 2 <= ticks:
                    writer.send(b"ping")
                if before < 3 <= ticks:
                    os.kill(os.getpid(), signal.SIGUSR1)
                if ticks >= TICKS:
                    events.delete(tid)
            elif ev.id == vid:
                events.add("t", TICK / 2, "half a tick later ...")
            elif ev.id == rid:
                say(f"  read {reader.recv(64)!r}")
        say(f"the set is empty ({len(events)} events): done")
    reader.close()
    writer.close()


if __name__ == "__main__":
    main()
