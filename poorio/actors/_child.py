"""The entry point of a process actor's interpreter: take the socket, read the boot frame, run the target, report.

The parent starts ``python -c "...; from poorio.actors._child import main;
main()" FD`` (or ``share``, with ``socket.share()`` data on stdin).  The
child adopts the parent's ``sys.path``, imports the target by name (the
parent's main script is loaded as ``__poorio_main__``, so its
``if __name__ == "__main__":`` block does not run again), runs it as its
main actor, and sends the outcome back as its last frame.  When the link
ends first -- the parent exited, was killed, or is stopping its actors --
the main fiber is cancelled and the process exits with status 1.

SIGINT is ignored here: a Ctrl-C reaches every process of the terminal's
group, and it is the parent's to decide when its actors stop.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

from .._core import current, run, spawn
from ..errors import Cancelled, MalformedMessageError
from ..net import SocketStream
from . import _node
from ._link import _MAIN, Link, _frame
from .address import Address

__all__ = ["main"]


def main() -> None:
    """Run the process actor the parent describes on the socket it handed over; exit with its status."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    how = sys.argv[1]
    if how == "share":
        sock = socket.fromshare(sys.stdin.buffer.read())
    else:
        sock = _adopt(int(how))
    sys.exit(run(_child_main, sock))


async def _child_main(sock: socket.socket) -> int:
    link = Link(SocketStream(sock), ())
    frame = await link.read_frame()
    if frame is None:
        return 1  # the parent went away before it said what to run
    if frame[0] != "B" or len(frame) != 3 or type(frame[1]) is not dict or type(frame[2]) is not bytes:
        raise MalformedMessageError(f"a process actor's first frame must boot it, not {frame[0]!r}")
    boot, args = frame[1], frame[2]
    node = _node.node
    sys.path[:] = [entry for entry in boot["sys_path"] if type(entry) is str]
    node.path = tuple(boot["path"])
    node.next_number = 2  # 1 is the main actor
    link.path = node.path[:-1]
    node.parent_link = link
    node.inherited = [_adopt(handle) for handle in boot.get("sockets", ())]
    record = _node._Record(Address(node.path, 1), "process")
    main_fiber = current()
    parent_gone = []
    spawn(link.write_loop, name="writer of the link to the parent")

    def started() -> None:  # the inbox exists: messages may flow in now
        spawn(_watch_parent, link, main_fiber, parent_gone, name="reader of the link to the parent")

    try:
        target = _import(boot["module"], boot["qualname"], boot["main_file"])
        value = await _node.actor_main(record, target, args, boot["parent"], boot["inbox_size"], started)
        outcome = _node.ok(value)
    except Cancelled:
        if parent_gone:
            return 1
        raise
    except BaseException as error:  # noqa: B036 - every ending is reported to the parent
        outcome = _node.failure(error)
    await link.outbox.put(_frame("X", *outcome))
    await link.flush(_node.STOP_TIMEOUT)
    return 0 if outcome[0] == "ok" else 1


async def _watch_parent(link: Link, main_fiber, parent_gone: list) -> None:
    """Route messages from the parent; when the link ends, the process ends."""
    try:
        await link.read_loop()
    finally:
        parent_gone.append(True)
        link.close()
        main_fiber.cancel()


def _adopt(handle) -> socket.socket:
    """A socket the parent handed over: an fd number, or ``socket.share()`` data; non-blocking.

    Discussion: ``O_NONBLOCK`` belongs to the open file description, which
    an inherited listener shares with the other workers.  PyPy's
    ``socket.socket(fileno=...)`` makes it *blocking* under the default
    timeout (CPython leaves it alone) -- and another worker, losing the
    race for a connection, would then block inside ``accept()``, its whole
    scheduler frozen.  With a default timeout of 0 the socket is made
    non-blocking instead, which every worker wants anyway.  (At boot the
    child has one thread, so the process-wide default is briefly ours.)
    """
    if type(handle) is bytes:
        sock = socket.fromshare(handle)
        sock.setblocking(False)
        return sock
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(0.0)
    try:
        sock = socket.socket(fileno=handle)
    finally:
        socket.setdefaulttimeout(previous)
    os.set_inheritable(sock.fileno(), False)  # it came inheritable; its own children must not get it
    return sock


def _import(module_name: str, qualname: str, main_file):
    import importlib

    if main_file is not None:
        module = sys.modules.get(_MAIN)
        if module is None:
            import importlib.util

            spec = importlib.util.spec_from_file_location(_MAIN, main_file)
            module = importlib.util.module_from_spec(spec)
            sys.modules[_MAIN] = module
            try:
                spec.loader.exec_module(module)
            except Exception as error:
                raise RuntimeError(
                    f"a process actor could not load the main script {main_file!r} to find {qualname!r}: {error!r}; "
                    'keep the program\'s start under `if __name__ == "__main__":`'
                ) from error
    else:
        module = importlib.import_module(module_name)
    target = module
    for part in qualname.split("."):
        target = getattr(target, part)
    return target
