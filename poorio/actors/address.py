"""An actor's address: where messages to it go; itself sendable, so actors can introduce each other.

An address names an actor by its process's *path* -- the chain of process
actors that leads to it from the program's first process (``()``; its
first process child is ``(1,)``, that one's second child ``(1, 2)``) --
and a number unique in that process.  The path is the route: a message to
a process below goes down the link to that child, anything else up the
link to the parent, so no process keeps a table of the others.

An address is a value: two addresses of one actor are equal, and one
decoded from a message works like the one ``spawn`` returned.  ``join``
and ``kill`` act on the actor's record, which the process that spawned it
(or that it runs in) holds.
"""

from __future__ import annotations

__all__ = ["Address"]


class Address:
    """Where to send messages to one actor: ``await address.send(message)``."""

    __slots__ = ("path", "number", "_record")

    def __init__(self, path: tuple, number: int, record=None) -> None:
        self.path = tuple(path)  # the process's path from the first process: () there
        self.number = number  # the actor's number in its process
        self._record = record  # the spawner's record of it, which keeps that record alive

    async def send(self, message) -> None:
        """Copy ``message`` into the actor's inbox; wait while the inbox is full.

        Raises:
            TypeError: the message holds a value that cannot be sent.
            MessageTooLargeError: it encodes to more than ``MAX_MESSAGE_SIZE`` bytes.
            ActorExitedError: the actor (or its process) has ended.
            Cancelled: the fiber was cancelled while it waited (nothing was sent).
        """
        from . import _node

        await _node.send_op(self, message).perform()

    def send_op(self, message):
        """The operation of sending ``message`` (encoded now, so a bad message fails here).

        Raises:
            TypeError, MessageTooLargeError, ActorExitedError: as ``send``.
        """
        from . import _node

        return _node.send_op(self, message)

    async def join(self):
        """Wait for the actor to end; return its exit value (a copy).

        Raises:
            ActorFailedError: it raised, was killed, or its process died
                (the remote exception's type, message and traceback text ride on it).
            ActorExitedError: this process holds no record of the actor
                (join from the process that spawned it, or that it runs in).
            Cancelled: the fiber was cancelled while it waited.
        """
        from . import _node

        return await _node.join(self)

    def kill(self) -> None:
        """End the actor now: a process actor's process is killed; a thread actor's fibers are cancelled.

        Nothing if it has ended already.

        Raises:
            ActorExitedError: this process holds no record of the actor.
        """
        from . import _node

        _node.kill(self)

    def __eq__(self, other) -> bool:
        if type(other) is not Address:
            return NotImplemented
        return self.number == other.number and self.path == other.path

    def __hash__(self) -> int:
        return hash((self.path, self.number))

    def __repr__(self) -> str:
        where = ".".join(map(str, self.path)) or "root"
        return f"<Address {where}/{self.number}>"
