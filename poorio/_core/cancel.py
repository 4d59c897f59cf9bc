"""Cancel scopes: cancel a block of code, on demand or at a deadline, and shield cleanup from it.

Cancellation in poorio follows trio.  A ``CancelScope`` is entered with
``with``; cancelling it -- by ``cancel()`` or because its deadline passed --
raises ``Cancelled`` in every fiber inside it at its current or next
suspension point, and the scope catches that ``Cancelled`` on its way out.
Scopes nest, and they form a tree across fibers: the children of a
``Group`` sit under the scope the group was opened in, so cancelling an outer
scope cancels them too.  A fiber is itself the root of its own scopes, which
is how ``Fiber.cancel()`` works.

Cancellation is *level-triggered*: while a scope stays cancelled, every
suspension point inside it raises ``Cancelled`` again.  Code that must
still wait while cancelled (closing a connection politely) runs inside a
scope with ``shield=True``, which stops an outer cancellation at its edge.

Deadlines are ``time.monotonic()`` values.  ``move_on_after`` just stops the
block; ``fail_after`` raises ``TimeoutError`` when its deadline cancelled it.
"""

from __future__ import annotations

import math
import time

from ..errors import Cancelled
from .traps import check_seconds, current_scheduler

__all__ = ["CancelNode", "CancelScope", "move_on_after", "move_on_at", "fail_after", "fail_at"]

_NEW, _ACTIVE, _DONE = 0, 1, 2  # a CancelScope's phase: entered at most once


class CancelNode:
    """A node of the cancellation tree: a ``CancelScope``, or a ``Fiber`` (the root of its scopes).

    A node is *effectively cancelled* when it was cancelled itself, or when
    its parent is and it is not shielded.  ``_update`` keeps that flag right
    for a whole subtree whenever it may change, and wakes every parked fiber
    whose innermost scope just became cancelled -- so a suspension point only
    reads one flag.
    """

    __slots__ = ("_parent", "_children", "_cancel_called", "_shield", "_effective", "_owner")

    def _init_node(self, parent, owner, shield: bool) -> None:
        self._parent = parent  # the enclosing node, None for a top-level fiber
        self._children = None  # the nodes whose parent this is, in attach order (a dict as an ordered set)
        self._cancel_called = False
        self._shield = shield
        self._effective = False  # cancelled itself, or an unshielded child of an effective node
        self._owner = owner  # the fiber this node's code runs in; None means "the node is that fiber"

    def _attach(self, parent) -> None:
        """Hang this (new, childless) node under ``parent`` and take over its cancellation."""
        self._link(parent)
        self._effective = self._cancel_called or (not self._shield and parent._effective)

    def _move(self, parent) -> None:
        """Hang this node (and its subtree) under ``parent`` instead, and take over its cancellation."""
        self._detach()
        self._link(parent)
        self._update()

    def _link(self, parent) -> None:
        self._parent = parent
        children = parent._children
        if children is None:
            parent._children = {self: None}
        else:
            children[self] = None

    def _detach(self) -> None:
        parent = self._parent
        if parent is not None:
            del parent._children[self]
            self._parent = None

    def _update(self) -> None:
        """Recompute the effective flag here and, where it changed, below; deliver new cancellations."""
        stack = [self]
        while stack:
            node = stack.pop()
            parent = node._parent
            effective = node._cancel_called or (
                not node._shield and parent is not None and parent._effective
            )
            if effective == node._effective:
                continue
            node._effective = effective
            if effective:
                fiber = node._owner or node
                if fiber._scope is node:  # innermost scope of its fiber: it may be parked
                    fiber._deliver_cancel()
            if node._children:
                stack.extend(reversed(node._children))  # deliver in attach order


class CancelScope(CancelNode):
    """A block of code that can be cancelled as a unit.

    ``with CancelScope(deadline=..., shield=...) as scope:`` -- then
    ``scope.cancel()`` from anywhere in the same thread.  A scope is entered
    once.  After the block, ``cancelled_caught`` tells whether the scope
    stopped a ``Cancelled`` that it had caused (when an enclosing scope is
    cancelled as well, the outermost cancelled one catches it).
    """

    __slots__ = ("_deadline", "_phase", "_timer", "_sched", "cancelled_caught")  # _timer: the deadline's handle

    def __init__(self, *, deadline: float = math.inf, shield: bool = False) -> None:
        """A scope cancelled at ``deadline`` (``time.monotonic()``; ``inf``: never) unless cancelled earlier.

        Raises:
            TypeError: ``deadline`` is not a number.
            ValueError: ``deadline`` is NaN.
        """
        deadline = float(check_seconds(deadline, "a cancel scope's deadline"))  # before anything is registered
        self._init_node(None, None, bool(shield))
        self._deadline = deadline
        self._phase = _NEW
        self._timer = None  # the event id of the deadline timer, while one is armed
        self._sched = None
        self.cancelled_caught = False

    def __enter__(self) -> CancelScope:
        """Enter the scope in the current fiber.

        Raises:
            RuntimeError: not in a poorio fiber, or the scope was already entered.
        """
        if self._phase != _NEW:
            raise RuntimeError("a CancelScope can be entered only once")
        sched = current_scheduler()
        fiber = sched.current
        if fiber is None:
            raise RuntimeError("a CancelScope must be entered inside a poorio fiber")
        self._phase = _ACTIVE
        self._sched = sched
        self._owner = fiber
        self._attach(fiber._scope)
        fiber._scope = self
        if self._deadline != math.inf:
            self._arm()
        return self

    def __exit__(self, etype, exc, tb) -> bool:
        fiber = self._owner
        if fiber._scope is not self:
            raise RuntimeError(f"cancel scope exited out of order in {fiber!r}")
        parent = self._parent
        # When a scope outside is cancelled too (and not shielded from us),
        # the Cancelled goes on to it: catching it here would only run the
        # code after this block up to its next suspension point.
        outer_cancelled = not self._shield and parent._effective
        fiber._scope = parent
        self._detach()
        self._disarm()
        self._phase = _DONE
        if self._cancel_called and not outer_cancelled and isinstance(exc, Cancelled):
            self.cancelled_caught = True
            return True
        return False

    def cancel(self) -> None:
        """Cancel everything inside this scope (now, or as soon as it is entered).

        Raises:
            RuntimeError: called from another thread than the scope's scheduler's.
        """
        if self._cancel_called or self._phase == _DONE:
            return
        if self._sched is not None:
            self._sched.check_thread(self)
        self._cancel_called = True
        self._disarm()
        if self._phase == _ACTIVE:
            self._update()

    @property
    def cancel_called(self) -> bool:
        """Whether ``cancel()`` was called or the deadline passed."""
        return self._cancel_called

    @property
    def deadline(self) -> float:
        """When the scope cancels itself (``time.monotonic()`` clock; ``inf`` = never)."""
        return self._deadline

    @deadline.setter
    def deadline(self, value: float) -> None:
        self._deadline = float(check_seconds(value, "a cancel scope's deadline"))
        if self._phase == _ACTIVE and not self._cancel_called:
            self._disarm()
            if self._deadline != math.inf:
                self._arm()

    @property
    def shield(self) -> bool:
        """Whether cancellation from outside stops at this scope's edge."""
        return self._shield

    @shield.setter
    def shield(self, value: bool) -> None:
        self._shield = bool(value)
        if self._phase == _ACTIVE:
            self._update()

    def _arm(self) -> None:
        if self._deadline <= time.monotonic():
            self.cancel()
        else:
            self._timer = self._sched.add_deadline(self._deadline, self)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._sched.cancel_deadline(self._timer)
            self._timer = None

    def on_event(self) -> None:
        """The deadline passed (the notifier reports this scope)."""
        self._timer = None
        self.cancel()

    def __repr__(self) -> str:
        state = ("new", "active", "done")[self._phase]
        extra = " cancelled" if self._cancel_called else ""
        if self._deadline != math.inf:
            extra += f" deadline in {self._deadline - time.monotonic():.3f}s"
        return f"<CancelScope {state}{extra}{' shielded' if self._shield else ''}>"


class _FailScope(CancelScope):
    """A cancel scope that turns its own deadline into ``TimeoutError``."""

    __slots__ = ()

    def __exit__(self, etype, exc, tb) -> bool:
        if super().__exit__(etype, exc, tb):
            raise TimeoutError("the operation did not finish before its deadline") from None
        return False


def move_on_at(deadline: float, *, shield: bool = False) -> CancelScope:
    """A scope that quietly stops its block at ``deadline`` (``time.monotonic()`` clock)."""
    return CancelScope(deadline=deadline, shield=shield)


def move_on_after(seconds: float, *, shield: bool = False) -> CancelScope:
    """A scope that quietly stops its block after ``seconds``; check ``cancelled_caught`` after.

    Raises:
        TypeError, ValueError: ``seconds`` is not a number, or NaN.
    """
    return CancelScope(deadline=time.monotonic() + check_seconds(seconds, "move_on_after()'s seconds"), shield=shield)


def fail_at(deadline: float, *, shield: bool = False) -> CancelScope:
    """A scope that stops its block at ``deadline`` and then raises ``TimeoutError``.

    Raises:
        TimeoutError: (on leaving the block) the deadline cancelled it.
    """
    return _FailScope(deadline=deadline, shield=shield)


def fail_after(seconds: float, *, shield: bool = False) -> CancelScope:
    """A scope that stops its block after ``seconds`` and then raises ``TimeoutError``.

    Raises:
        TimeoutError: (on leaving the block) the time ran out.
        TypeError, ValueError: ``seconds`` is not a number, or NaN.
    """
    return _FailScope(deadline=time.monotonic() + check_seconds(seconds, "fail_after()'s seconds"), shield=shield)
