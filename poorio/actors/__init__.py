"""Actors, after Emilua's ``spawn_vm``: schedulers in other threads or processes that share nothing and talk by messages.

::

    from poorio import actors

    async def worker(greeting):
        msg = await actors.receive()          # the next message in this actor's inbox
        await msg["reply_to"].send(greeting + ", " + msg["name"])
        return "done"

    async def main():
        addr = actors.spawn(worker, "hello", kind="process")   # or kind="thread"
        await addr.send({"name": "world", "reply_to": actors.me()})
        print(await actors.receive())         # hello, world
        print(await addr.join())              # done

An actor is a scheduler with an inbox.  ``spawn(target, *args,
kind=...)`` starts ``target(*args)`` -- an async function -- as a new actor
and returns its ``Address``: ``kind="thread"`` runs it on a new thread with
a scheduler of its own, ``kind="process"`` in a fresh interpreter (the
target must then be importable by name: a module-level function, or a
``"module:function"`` string).  The program's own ``poorio.run`` becomes
an actor the first time it calls ``me()``, ``receive()`` or ``spawn()``.

Messages are copied, never shared or pickled: plain data (None, bool, int,
float, str, bytes, lists, tuples and dicts of them) and addresses, at most
``MAX_MESSAGE_SIZE`` bytes encoded (``poorio.actors.codec``).  A bad
message fails at the sender.  Inboxes are bounded: a full one makes
``send`` wait.  ``send_op``/``receive_op`` are operations for ``choice``.

Failure is visible: ``await address.join()`` returns a copy of the actor's
exit value, or raises ``ActorFailedError`` carrying the remote exception's
type, message and traceback text (or the exit status of a process that
died); sending to an ended actor raises ``ActorExitedError``.  No actor
outlives the one that spawned it: when an actor's scheduler ends, the
actors it spawned are stopped -- its process actors see their link close
and exit, and are reaped.

Guide: ``docs/actors.md``.
"""

from __future__ import annotations

from ..errors import ActorExitedError, ActorFailedError, MalformedMessageError, MessageTooLargeError
from . import _node
from .address import Address
from .codec import MAX_MESSAGE_SIZE

__all__ = [
    "spawn", "receive", "receive_op", "me", "parent", "inherited_sockets", "importable_name", "Address", "MAX_MESSAGE_SIZE", "DEFAULT_INBOX_SIZE",
    "ActorExitedError", "ActorFailedError", "MessageTooLargeError", "MalformedMessageError",
]  # fmt: skip

DEFAULT_INBOX_SIZE = _node.DEFAULT_INBOX_SIZE
_KINDS = ("thread", "process")


def spawn(target, *args, kind: str = "thread", inbox_size: int = DEFAULT_INBOX_SIZE, sockets: tuple = ()) -> Address:
    """Start ``target(*args)`` as a new actor; return its address.

    ``args`` are copied like a message.  ``inbox_size``: how many messages
    its inbox holds before senders wait.  The new actor's ``parent()`` is
    the caller's ``me()``.  ``sockets`` (process actors only): sockets the
    new process inherits -- a listener its workers share -- found there with
    ``inherited_sockets()``; the caller keeps its own and closes them.

    Raises:
        ValueError: ``kind`` is not ``"thread"`` or ``"process"``, or a bad ``inbox_size``.
        TypeError: an argument cannot be sent, or a process target is not importable by name.
        MessageTooLargeError: the arguments encode to more than ``MAX_MESSAGE_SIZE`` bytes.
        OSError: the thread or process could not be started (unmodified).
        RuntimeError: not called in a poorio fiber.
    """
    if kind not in _KINDS:
        raise ValueError(f"an actor's kind is 'thread' or 'process', not {kind!r}")
    if isinstance(inbox_size, bool) or not isinstance(inbox_size, int) or inbox_size < 1:
        raise ValueError(f"inbox_size must be an int >= 1, not {inbox_size!r}")
    from . import codec

    encoded = codec.encode(list(args))
    if kind == "thread":
        if sockets:
            raise ValueError("only a process actor inherits sockets; a thread actor shares this process's")
        if not callable(target):
            raise TypeError(f"a thread actor's target is an async function, not {target!r}")
        return _node.spawn_thread(target, encoded, inbox_size)
    from ._link import spawn_process

    return spawn_process(target, encoded, inbox_size, tuple(sockets))


async def receive():
    """The next message in this actor's inbox (a fresh copy), waiting for one if it is empty.

    Raises:
        Cancelled: the fiber was cancelled while it waited.
        RuntimeError: not called in a poorio fiber.
    """
    return await _node.receive()


def receive_op():
    """The operation of receiving the next message (for ``choice``, e.g. with a ``timeout_op``)."""
    return _node.receive_op()


def me() -> Address:
    """This actor's own address (the running scheduler becomes an actor if it is not one yet)."""
    return _node.me()


def inherited_sockets() -> list:
    """The sockets this process actor's parent handed over with ``spawn(..., sockets=...)``; yours to close."""
    return list(_node.node.inherited)


def importable_name(target) -> str:
    """``"module:function"``: the name a fresh interpreter imports ``target`` by (for workers, configs...).

    Raises:
        TypeError: ``target`` is a lambda, a nested function, or lives in
            the main script or an interactive session (a process actor can
            still run a main script's function; a name alone cannot).
        ValueError: a string that is not ``"module:function"``.
    """
    from ._link import target_spec

    module, qualname, main_file = target_spec(target)
    if main_file is not None:
        raise TypeError(f"{target!r} is defined in the main script: move it into a module to name it")
    return f"{module}:{qualname}"


def parent():
    """The address of the actor that spawned this one; None for the program's own first actor."""
    return _node.current_actor().parent
