"""Groups: structured concurrency, where no child fiber outlives the block that spawned it.

::

    async with poorio.Group() as g:
        g.spawn(fetch, url1)
        g.spawn(fetch, url2)
    # both have finished here

Leaving the ``async with`` block waits for every child.  When a child fails,
the group cancels the others (and the block's own code, if it is still
running), waits for them, and raises an ``ExceptionGroup`` of the failures --
on Python 3.9/3.10 poorio's equivalent class of the same name
(``poorio.errors.ExceptionGroup``).  Cancelled children are not failures.
When only the block itself raises, the children are cancelled and that
exception propagates unchanged.

Each group has a ``cancel_scope``: ``g.cancel_scope.cancel()`` stops the
block and every child, quietly.  Cancelling a scope around the group does
the same, and the ``Cancelled`` then reaches that scope.

``await g.start(fn, *args)`` starts a child and waits until it says it is
ready (trio's ``nursery.start``): the child is called with a keyword
``task_status`` and calls ``task_status.started(value)`` once it is -- a
server after it has bound its port, say -- and ``start`` returns ``value``.
Until then the child runs under the caller's cancel scope and its failure
is the caller's (``start`` raises it); from then on it is an ordinary child
of the group.
"""

from __future__ import annotations

from ..errors import BaseExceptionGroup, Cancelled
from .cancel import CancelScope
from .traps import Suspend, current_scheduler, suspend

__all__ = ["Group", "TaskStatus"]


class TaskStatus:
    """What a child started with ``Group.start`` calls once it is ready: ``task_status.started(value)``."""

    __slots__ = ("_group", "_fiber", "_waiter", "_started")

    def __init__(self, group) -> None:
        self._group = group
        self._fiber = None  # the child
        self._waiter = None  # the suspension of the fiber waiting in start()
        self._started = False

    def started(self, value=None) -> None:
        """Say the child is ready: ``start`` returns ``value``, and the child becomes the group's.

        Raises:
            RuntimeError: called twice, or the group has closed meanwhile.
        """
        if self._started:
            raise RuntimeError("task_status.started() was already called")
        self._started = True
        self._group._adopt(self._fiber)
        self._waiter.complete((True, value))

    def __repr__(self) -> str:
        return f"<TaskStatus {'started' if self._started else 'starting'}>"


class _Starting:
    """What ``dump()`` shows for a fiber waiting in ``Group.start``."""

    __slots__ = ("fiber",)

    def __init__(self, fiber) -> None:
        self.fiber = fiber

    def __repr__(self) -> str:
        return f"start of #{self.fiber._id} {self.fiber.name!r}"


class Group:
    """A set of child fibers that all finish before the ``async with`` block is left."""

    __slots__ = ("cancel_scope", "_sched", "_children", "_errors", "_waiter", "_open")

    def __init__(self) -> None:
        self.cancel_scope = CancelScope()
        self._sched = None
        self._children = set()  # the fibers still running
        self._errors = []  # the children's failures, in the order they happened
        self._waiter = None  # the parent's Suspension while it waits at the block's end
        self._open = False

    async def __aenter__(self) -> Group:
        """Open the group in the current fiber.

        Raises:
            RuntimeError: not in a poorio fiber, or the group was used before.
        """
        if self._sched is not None:
            raise RuntimeError("a Group can be used only once")
        self._sched = current_scheduler()
        self.cancel_scope.__enter__()
        self._open = True
        return self

    def spawn(self, fn, *args, name: str | None = None):
        """Start ``fn(*args)`` as a child fiber of this group; returns its ``Fiber``.

        Raises:
            RuntimeError: the group is not open (before ``async with`` or after it).
        """
        if not self._open:
            raise RuntimeError("spawn into a Group only inside its async with block")
        self._sched.check_thread(self)
        fiber = self._sched.spawn(fn, *args, name=name, parent=self.cancel_scope, group=self)
        self._children.add(fiber)
        return fiber

    async def start(self, fn, *args, name: str | None = None):
        """Start ``fn(*args, task_status=...)`` and wait until it calls ``task_status.started(value)``; return ``value``.

        Until it has started, the child runs under this fiber's cancel scope:
        cancelling this fiber cancels the child and ``start`` waits for it to
        end.  Afterwards it is a child of the group like any other.

        Raises:
            RuntimeError: the group is not open, or the child returned without
                calling ``started()``.
            Cancelled: this fiber was cancelled before the child started.
            BaseException: what the child raised before it started.
        """
        if not self._open:
            raise RuntimeError("start into a Group only while it is open")
        sched = self._sched
        sched.check_thread(self)
        status = TaskStatus(self)
        caller = sched.current
        child = sched.spawn(lambda: fn(*args, task_status=status), name=name or _name_of(fn), parent=caller)
        status._fiber = child

        def setup(susp) -> None:
            status._waiter = susp
            child.add_joiner(susp)  # completes with None if it ends first

        # Not abortable: a cancellation reaches the child through the scope
        # tree, and start() returns only once the child has started or ended.
        outcome = await Suspend(setup, _Starting(child), False)
        child.remove_joiner(status._waiter)
        if outcome is not None:
            return outcome[1]
        error = child.exception()  # the child ended before it started: its outcome is ours
        if error is not None:
            raise error
        raise RuntimeError(f"{child!r} returned without calling task_status.started()")

    def _adopt(self, fiber) -> None:
        """Make a started child the group's own: it moves under the group's scope."""
        if not self._open:
            raise RuntimeError("the Group closed before its child called task_status.started()")
        fiber._group = self
        self._children.add(fiber)
        fiber._move(self.cancel_scope)

    def _child_done(self, fiber) -> None:
        """A child finished (the scheduler calls this)."""
        self._children.discard(fiber)
        error = fiber.exception()
        if error is not None and not isinstance(error, Cancelled):
            self._errors.append(error)
            self.cancel_scope.cancel()
        if not self._children and self._waiter is not None:
            self._waiter.complete()

    def _set_waiter(self, susp) -> None:
        if self._children:
            self._waiter = susp
        else:
            susp.complete()

    async def __aexit__(self, etype, exc, tb) -> bool:
        if exc is not None and not isinstance(exc, Cancelled):
            self.cancel_scope.cancel()  # the block failed: its children must stop
        cancelled = failure = None
        abortable = True
        while self._children:
            try:
                await suspend(self._set_waiter, self, abortable)
            except Cancelled as stop:
                # Cancellation reaches the children through the scope tree;
                # keep waiting for them, but no longer abortably.
                cancelled = stop
                abortable = False
            except BaseException as error:  # e.g. DeadlockError: stop the children first
                failure = error
                abortable = False
                self.cancel_scope.cancel()
            finally:
                self._waiter = None
        self._open = False
        pending = failure if failure is not None else exc if exc is not None else cancelled
        if self._errors:
            self.cancel_scope.__exit__(None, None, None)
            failures = self._errors
            if pending is not None and not isinstance(pending, Cancelled):
                failures = [pending, *failures]
            raise BaseExceptionGroup("errors in poorio.Group children", failures)
        if pending is None:
            self.cancel_scope.__exit__(None, None, None)
            return False
        if self.cancel_scope.__exit__(type(pending), pending, pending.__traceback__):
            return True
        if pending is exc:
            return False
        raise pending

    def __repr__(self) -> str:
        return f"<Group of {len(self._children)} running, {len(self._errors)} failed>"


def _name_of(fn) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
