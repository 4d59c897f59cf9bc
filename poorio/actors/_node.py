"""This process's actors: who runs here, the routes to the others, how each ended; actors in threads.

An *actor* is a scheduler with an inbox: the program's own ``poorio.run``
becomes one the first time it asks for ``me()``, ``receive()`` or
``spawn()``; a thread actor is a new thread running ``poorio.run`` of its
target; a process actor is a new interpreter (``poorio.actors._link``).
Each local actor keeps a *keeper* fiber in its scheduler, parked until the
scheduler ends and cancels it.  Its cleanup is the actor's end: the inbox
closes (senders get ``ActorExitedError``) and the thread actors it spawned
are cancelled and waited for; its process actors' link fibers, cancelled
by the same ending, close their sockets and reap their children.  So no
actor outlives the one that spawned it.

A ``_Record`` is what this process knows of an actor it runs or spawned:
how to stop it and, once it has ended, its *outcome* -- ``("ok", bytes)``
with its encoded exit value, or ``("error", type, message, traceback,
exitcode)``.  Joiners in any thread wait on it through a ``Completion``.
"""

from __future__ import annotations

import threading
import weakref
from _thread import allocate_lock

from .._core.cancel import CancelScope, move_on_after
from .._core import current, run, spawn
from .._core.traps import current_scheduler, suspend
from ..completion import Completion
from ..errors import ActorExitedError, ActorFailedError, Cancelled, ClosedResourceError
from . import codec
from .address import Address
from .mailbox import Mailbox

DEFAULT_INBOX_SIZE = 64  # messages an inbox holds before senders wait
STOP_TIMEOUT = 5.0  # seconds an ending actor waits for each child to end before it gives up (threads) or kills (processes)


class _Record:
    """What this process knows of one actor: how to stop it, and how it ended.  Thread-safe."""

    __slots__ = ("address", "kind", "lock", "outcome", "callbacks", "sched", "fiber", "process", "__weakref__")

    def __init__(self, address: Address, kind: str) -> None:
        self.address = address
        self.kind = kind  # "thread", "process" or "root"
        self.lock = allocate_lock()
        self.outcome = None  # set once, when the actor has ended
        self.callbacks = []  # called with the outcome when it is set
        self.sched = None  # a local actor's scheduler and main fiber, for kill()
        self.fiber = None
        self.process = None  # a process actor's poorio.process.Process

    def finish(self, outcome: tuple) -> None:
        with self.lock:
            if self.outcome is not None:
                return
            self.outcome = outcome
            callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            callback(outcome)

    def on_finish(self, callback) -> None:
        with self.lock:
            if self.outcome is None:
                self.callbacks.append(callback)
                return
        callback(self.outcome)

    def forget(self, callback) -> None:
        with self.lock:
            if callback in self.callbacks:
                self.callbacks.remove(callback)


class _Actor:
    """An actor running in this process: its address, inbox, scheduler, and the actors it spawned."""

    __slots__ = ("address", "parent", "inbox", "sched", "record", "children")

    def __init__(self, record: _Record, parent: Address | None, inbox_size: int) -> None:
        self.address = record.address
        self.parent = parent
        self.record = record
        self.sched = current_scheduler()
        self.inbox = Mailbox(inbox_size, name=f"inbox of {record.address!r}")
        self.children = []  # records of the thread actors it spawned, stopped when it ends


class _Node:
    """The process's table of actors and links (one per process)."""

    def __init__(self) -> None:
        self.lock = allocate_lock()
        self.path = ()  # this process's path: () in the first process, set from the boot frame in a child
        self.actors = {}  # number -> _Actor running here
        self.records = weakref.WeakValueDictionary()  # Address -> _Record, while an Address or the actor holds it
        self.children = {}  # child index -> Link to a process actor spawned here
        self.parent_link = None  # in a process actor: the Link to the process that spawned it
        self.inherited = []  # in a process actor: sockets its parent handed over (serve_tcp's listener)
        self.next_number = 1
        self.next_child = 1

    def new_number(self) -> int:
        with self.lock:
            number = self.next_number
            self.next_number += 1
            return number

    def new_child(self) -> int:
        with self.lock:
            index = self.next_child
            self.next_child += 1
            return index

    def link_towards(self, path: tuple):
        """The link a message to ``path`` leaves by, or None if that process is gone."""
        here = self.path
        if len(path) > len(here) and path[: len(here)] == here:
            return self.children.get(path[len(here)])
        return self.parent_link


node = _Node()
_local = threading.local()  # .actor: the actor whose scheduler runs on this thread


def current_actor() -> _Actor:
    """The actor of the running scheduler; the first call in a plain ``poorio.run`` makes it one.

    Raises:
        RuntimeError: no scheduler runs in this thread.
    """
    sched = current_scheduler()
    actor = getattr(_local, "actor", None)
    if actor is None or actor.sched is not sched:
        address = Address(node.path, node.new_number())
        actor = bind(_Record(address, "root"), None, DEFAULT_INBOX_SIZE)
    return actor


def bind(record: _Record, parent: Address | None, inbox_size: int) -> _Actor:
    """Make the running scheduler the actor ``record`` describes: inbox, registration, keeper."""
    actor = _Actor(record, parent, inbox_size)
    record.sched = actor.sched
    record.fiber = current()
    with node.lock:
        node.actors[record.address.number] = actor
        node.records[record.address] = record
    _local.actor = actor
    actor.sched.spawn(_keep, actor, name=f"keeper of {record.address!r}")
    return actor


async def _keep(actor: _Actor) -> None:
    """Park until the scheduler ends; then end the actor (see the module docstring)."""
    closing = False
    try:
        await suspend(_nothing, "the end of the actor's scheduler")
    except GeneratorExit:  # abandoned after an error escaped the loop: nothing may be awaited
        closing = True
        raise
    finally:
        with node.lock:
            node.actors.pop(actor.address.number, None)
        actor.inbox.close(lambda: ActorExitedError(f"{actor.address!r} has ended"))
        if getattr(_local, "actor", None) is actor:
            _local.actor = None
        for record in actor.children:
            _stop_thread(record)
        if not closing:
            with CancelScope(shield=True):
                for record in actor.children:
                    await _wait_ended(record, STOP_TIMEOUT)


def _nothing(susp) -> None:
    """A suspension nobody completes: only the scheduler's end (a cancellation) wakes it."""


def _stop_thread(record: _Record) -> None:
    if record.outcome is None and record.sched is not None:
        try:
            record.sched.call_threadsafe(record.fiber.cancel)
        except ClosedResourceError:
            pass  # its scheduler has just finished


async def _wait_ended(record: _Record, seconds: float) -> bool:
    done = Completion()
    record.on_finish(done.callback)
    try:
        with move_on_after(seconds):
            await done
            return True
        import logging

        logging.getLogger("poorio").warning("%r did not end within %.1f s of its parent; left behind", record.address, seconds)
        return False
    finally:
        record.forget(done.callback)


# -- outcomes ------------------------------------------------------------------------------


def ok(value) -> tuple:
    """The outcome of an actor that returned ``value`` (which must be sendable)."""
    try:
        return ("ok", codec.encode(value))
    except (TypeError, ValueError) as error:
        return ("error", type(error).__name__, f"its exit value cannot be sent: {error}", "", None)


def failure(error: BaseException, exitcode: int | None = None) -> tuple:
    """The outcome of an actor that raised ``error``, with its traceback as text."""
    import traceback

    kind = type(error)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    text = "".join(traceback.format_exception(kind, error, error.__traceback__))
    return ("error", name, str(error), text, exitcode)


def result(address: Address, outcome: tuple):
    """The exit value an outcome holds, or the ``ActorFailedError`` it describes raised."""
    if outcome[0] == "ok":
        return codec.decode(outcome[1])
    _, name, message, text, exitcode = outcome
    raise ActorFailedError(f"{address!r} failed: {name}: {message}", name, message, text, exitcode)


# -- the public operations -------------------------------------------------------------------


def route(address: Address, payload: bytes) -> tuple:
    """``(mailbox, item)``: where an encoded message to ``address`` goes next.

    Raises:
        ActorExitedError: the actor, or the process it ran in, has ended.
    """
    if address.path == node.path:
        actor = node.actors.get(address.number)
        if actor is None:
            raise ActorExitedError(f"{address!r} has ended (or never ran in this process)")
        return actor.inbox, payload
    link = node.link_towards(address.path)
    if link is None:
        raise ActorExitedError(f"{address!r} is gone: its process has ended")
    from ._link import message_frame

    return link.outbox, message_frame(address, payload)


def send_op(address: Address, message):
    payload = codec.encode(message)
    box, item = route(address, payload)
    return box.put_op(item)


async def join(address: Address):
    record = address._record or node.records.get(address)
    if record is None:
        raise ActorExitedError(
            f"this process holds no record of {address!r}: join it in the process that spawned it"
        )
    done = Completion()
    record.on_finish(done.callback)
    try:
        outcome = await done
    finally:
        record.forget(done.callback)
    return result(address, outcome)


def kill(address: Address) -> None:
    record = address._record or node.records.get(address)
    if record is None:
        raise ActorExitedError(f"this process holds no record of {address!r}")
    if record.outcome is not None:
        return
    if record.process is not None:
        try:
            record.process.kill()
        except ProcessLookupError:
            pass  # it exited just now
    else:
        _stop_thread(record)


class _Started:
    """Holds spawn() back until the new actor's inbox exists (or its thread failed first)."""

    __slots__ = ("lock", "released")

    def __init__(self) -> None:
        self.lock = allocate_lock()
        self.lock.acquire()
        self.released = False

    def __call__(self) -> None:
        if not self.released:
            self.released = True
            self.lock.release()


def spawn_thread(target, args: bytes, inbox_size: int) -> Address:
    """Start ``target(*args)`` as an actor on a new thread with a scheduler of its own."""
    parent = current_actor()
    address = Address(node.path, node.new_number())
    record = _Record(address, "thread")
    started = _Started()
    thread = threading.Thread(
        target=_thread_body, args=(record, target, args, parent.address, inbox_size, started),
        name=f"poorio actor {address.number}", daemon=True,
    )
    thread.start()
    started.lock.acquire()  # until its inbox exists, so a send right after spawn() reaches it
    if record.outcome is not None and record.sched is None:  # its scheduler never started
        result(address, record.outcome)
    if len(parent.children) >= 64:  # a long-lived actor spawning many: forget the ended ones
        parent.children = [child for child in parent.children if child.outcome is None]
    parent.children.append(record)
    return Address(address.path, address.number, record)


def _thread_body(record: _Record, target, args: bytes, parent: Address, inbox_size: int, started: _Started) -> None:
    try:
        outcome = ok(run(actor_main, record, target, args, parent, inbox_size, started))
    except BaseException as error:  # noqa: B036 - every ending is reported to the joiners
        outcome = failure(error)
    record.finish(outcome)
    started()  # failed before its inbox existed: let spawn() go on


async def actor_main(record: _Record, target, args: bytes, parent: Address | None, inbox_size: int, started=None):
    """Run ``target`` as the actor ``record`` in the running scheduler; its main fiber."""
    bind(record, parent, inbox_size)
    if started is not None:
        started()
    return await target(*codec.decode(args))


def me() -> Address:
    actor = current_actor()
    return Address(actor.address.path, actor.address.number, actor.record)


async def receive():
    return codec.decode(await current_actor().inbox.get())


def receive_op():
    return current_actor().inbox.get_op().wrap(codec.decode)
