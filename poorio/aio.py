"""Stock asyncio on poorio's backends: ``asyncio.SelectorEventLoop`` over a ``poorio.selector.Selector``.

Nothing in asyncio changes: the loop is the stdlib's own selector event
loop, with poorio's selector (epoll, kqueue, WSAPoll or poll(2) through
ctypes) doing the waiting.  Streams, servers, ``loop.sock_*``, subprocesses,
timeouts and signal handlers all work as they do on the stdlib's selector.
Three ways in, like uvloop's::

    poorio.aio.run(main())                    # no global state; preferred
    asyncio.run(main(), loop_factory=poorio.aio.new_event_loop)   # Python 3.12+
    poorio.aio.install(); asyncio.run(main()) # an event loop policy

``capacity=`` bounds how many fds a loop can watch at once (default: the
process's fd limit, see ``poorio.selector.default_capacity``); ``backend=``
pins one (default: poorio's choice, which ``POORIO_BACKEND`` overrides).

Event loop policies are deprecated from Python 3.14 (to be removed in
3.16): there ``install()`` warns, and ``run()`` is the way.  On 3.9-3.13 it
is silent, and subprocesses keep working because the policy is asyncio's
own default one (which owns the child watcher) with only
``new_event_loop`` replaced.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import warnings

from .selector import new_selector

__all__ = ["new_event_loop", "run", "install", "EventLoopPolicy"]


def new_event_loop(*, capacity: int | None = None, backend: str | None = None) -> asyncio.AbstractEventLoop:
    """A new ``asyncio.SelectorEventLoop`` waiting on a poorio selector.

    Raises:
        BackendUnavailableError: ``backend`` cannot run here.
        ValueError: ``capacity`` is not a positive int.
    """
    return asyncio.SelectorEventLoop(new_selector(backend, capacity))


def run(main, *, debug: bool | None = None, capacity: int | None = None, backend: str | None = None):
    """Run the coroutine ``main`` to completion on a new poorio loop and return its result.

    Like ``asyncio.run``: the loop is created, set as current, and on the
    way out remaining tasks are cancelled, async generators and the default
    executor shut down, and the loop closed.  No event loop policy is used.

    Raises:
        RuntimeError: called from a running event loop.
        ValueError: ``main`` is not a coroutine.
    """
    factory = functools.partial(new_event_loop, capacity=capacity, backend=backend)
    if sys.version_info >= (3, 12):
        return asyncio.run(main, debug=debug, loop_factory=factory)
    if asyncio._get_running_loop() is not None:
        raise RuntimeError("poorio.aio.run() cannot be called from a running event loop")
    if sys.version_info >= (3, 11):
        with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
            return runner.run(main)
    return _run_before_311(main, debug, factory)


def _run_before_311(main, debug, factory):
    """``asyncio.run`` for Python 3.9 and 3.10, which take no loop factory."""
    if not asyncio.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
    loop = factory()
    try:
        asyncio.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_remaining(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_remaining(loop) -> None:
    """Cancel the tasks ``main`` left behind and report any that failed, as ``asyncio.run`` does."""
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {"message": "unhandled exception during poorio.aio.run() shutdown", "exception": task.exception(), "task": task}
            )


# asyncio's own default policy, to inherit from.  From 3.14 its public name
# warns on access (policies are deprecated) while the underscored one does
# not; before 3.14 only the public name exists; from 3.16 neither does.
_DefaultPolicy = getattr(asyncio, "_DefaultEventLoopPolicy", None) or getattr(asyncio, "DefaultEventLoopPolicy", None)

if _DefaultPolicy is not None:

    class EventLoopPolicy(_DefaultPolicy):  # type: ignore[misc, valid-type]
        """asyncio's default event loop policy, except that its loops run on poorio.

        Everything else -- the loop per thread, the child watcher on Unix
        before 3.14 -- is inherited unchanged.
        """

        def __init__(self, *, capacity: int | None = None, backend: str | None = None) -> None:
            super().__init__()
            self._capacity = capacity
            self._backend = backend

        def new_event_loop(self) -> asyncio.AbstractEventLoop:
            """A new poorio event loop (not yet the current one)."""
            return new_event_loop(capacity=self._capacity, backend=self._backend)


def install(*, capacity: int | None = None, backend: str | None = None) -> None:
    """Make poorio's ``EventLoopPolicy`` asyncio's, so ``asyncio.run`` uses poorio.

    Undo with ``asyncio.set_event_loop_policy(None)``.  Warns
    (``DeprecationWarning``) from Python 3.14, where asyncio deprecates
    policies; prefer ``run()``.

    Raises:
        RuntimeError: this Python's asyncio has no event loop policies left.
    """
    if _DefaultPolicy is None:
        raise RuntimeError("this Python's asyncio has no event loop policies; use poorio.aio.run()")
    policy = EventLoopPolicy(capacity=capacity, backend=backend)
    if sys.version_info < (3, 14):
        asyncio.set_event_loop_policy(policy)
        return
    warnings.warn(
        "poorio.aio.install() relies on asyncio event loop policies, deprecated since Python 3.14; "
        "use poorio.aio.run() or asyncio.run(main, loop_factory=poorio.aio.new_event_loop)",
        DeprecationWarning,
        stacklevel=2,
    )
    with warnings.catch_warnings():  # said once above, in poorio's words
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(policy)
