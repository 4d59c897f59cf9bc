"""Actor targets for the actor tests -- module-level async functions, so a fresh interpreter imports them by name -- and ``alive``."""

from __future__ import annotations

import os
import sys

import poorio
from poorio import actors


async def echo(count):
    """Send back each of ``count`` messages ``(reply_to, payload)`` as ``payload``; return how many."""
    for _ in range(count):
        reply_to, payload = await actors.receive()
        await reply_to.send(payload)
    return count


async def whoami():
    return {"me": actors.me(), "parent": actors.parent(), "pid": os.getpid()}


async def crash(message):
    def deep():
        raise ValueError(message)

    deep()


async def forever():
    """Report the pid, then wait for messages that never come."""
    await actors.parent().send(os.getpid())
    await actors.receive()


async def slow_counter(delay, count):
    """Sleep ``delay`` before draining ``count`` numbered messages; return (received, in order)."""
    await poorio.sleep(delay)
    expected = 0
    in_order = True
    for _ in range(count):
        number, _padding = await actors.receive()
        in_order = in_order and number == expected
        expected += 1
    return expected, in_order


async def relay(kind, root):
    """Spawn a child of ``kind`` that greets ``root`` directly; return what it returned."""
    child = actors.spawn(greet_root, root, kind=kind)
    return await child.join()


async def greet_root(root):
    await root.send(("hello from", actors.me(), actors.parent()))
    return "greeted"


async def introduce():
    """Receive (peer, root): tell ``peer`` to reply to ``root``."""
    peer, root = await actors.receive()
    await peer.send((root, "introduced"))
    return "ok"


async def unsendable_result():
    return {1, 2}


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (so: exited *and* reaped, when False).

    POSIX only: on Windows ``os.kill(pid, 0)`` would terminate the process.
    """
    if sys.platform == "win32":
        raise NotImplementedError("alive() asks /proc or kill(pid, 0): POSIX only")
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
