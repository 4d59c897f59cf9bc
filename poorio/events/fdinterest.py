"""Which fds an event set's pool watches, for which of its read and write events.

An fd may have one read event and one write event; the pool holds one
registration per fd, for the union of what they want.  ``registered``
mirrors what the pool was last told, so no pool call is made when nothing
changes and a lazy set can tell a parked fd (registered, wanted by nobody)
from a wanted one.  The pool itself, and the errors it raises, belong to the
platform layer.
"""

from __future__ import annotations

import errno

from ..errors import AlreadyRegisteredError, PoolFullError
from ..platform import READABLE, WRITABLE

__all__ = ["FdInterest"]


class FdInterest:
    """The read and write events of an event set, by fd, and their pool registrations."""

    __slots__ = ("pool", "capacity", "readers", "writers", "registered", "reserved")

    def __init__(self, pool, capacity: int, reserved: int) -> None:
        self.pool = pool
        self.capacity = capacity  # how many fds events may use (the pool has room for more)
        self.readers: dict = {}  # fd -> its read event
        self.writers: dict = {}  # fd -> its write event
        self.registered: dict = {}  # fd -> what the pool watches it for ("reserved" aside)
        self.reserved = reserved  # the set's own fd in the pool (its wake-up channel)

    def watch(self, ev, fd: int, bit: int) -> None:
        """Give ``fd`` its read (``bit`` READABLE) or write (WRITABLE) event ``ev``.

        Raises:
            AlreadyRegisteredError: ``fd`` already has an event in that direction.
            ValueError: ``fd`` is the set's own wake-up channel.
            PoolFullError: ``capacity`` fds are registered and none is parked.
            OSError: the kernel refused ``fd``.
        """
        mine = self.readers if bit == READABLE else self.writers
        taken = mine.get(fd)
        if taken is not None:
            direction = "read" if bit == READABLE else "write"
            raise AlreadyRegisteredError(
                f"fd {fd} already has a {direction} event in this set (id {taken.id}, kind {taken.kind!r})"
            )
        have = self.registered.get(fd, 0)
        if not have:
            if fd == self.reserved:
                raise ValueError(f"fd {fd} is this event set's own wake-up channel")
            if len(self.registered) >= self.capacity and not self.evict_parked():
                raise PoolFullError(f"the event set is full: it watches its capacity of {self.capacity} fds")
            self.pool.add(fd, bit)
            self.registered[fd] = bit
        elif not have & bit:
            self.pool.modify(fd, have | bit)
            self.registered[fd] = have | bit
        mine[fd] = ev

    def unwatch(self, fd: int) -> None:
        """Make the pool watch ``fd`` for exactly what its events still want."""
        want = (READABLE if fd in self.readers else 0) | (WRITABLE if fd in self.writers else 0)
        have = self.registered.get(fd, 0)
        if want == have:
            return
        if want:
            try:
                self.pool.modify(fd, want)
            except OSError as exc:
                # Closed before its events were deleted: epoll already
                # dropped it.  Forget it too, rather than fail a delete.
                if exc.errno not in (errno.EBADF, errno.ENOENT):
                    raise
                del self.registered[fd]
                self.pool.remove(fd)
                return
            self.registered[fd] = want
        else:
            del self.registered[fd]
            self.pool.remove(fd)

    def evict_parked(self) -> bool:
        """Unregister the fds kept for nobody (a lazy set's); whether there were any."""
        readers, writers = self.readers, self.writers
        parked = [fd for fd in self.registered if fd not in readers and fd not in writers]
        for fd in parked:
            self.unwatch(fd)
        return bool(parked)

    def __len__(self) -> int:
        """How many fds are registered (the reserved one aside)."""
        return len(self.registered)

    def __repr__(self) -> str:
        return f"<FdInterest {len(self.readers)} readers, {len(self.writers)} writers, {len(self.registered)} fds>"
