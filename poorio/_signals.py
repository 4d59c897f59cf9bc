"""Process-wide signal plumbing for event sets: one handler per signal number, the original put back when the last listener leaves.

Signal dispositions belong to the process, not to an event set, so this
module keeps the one table that maps a signal number to the event sets
listening for it, and the handler that was installed before poorio's.

How a signal becomes an event: poorio installs a Python-level handler (the
interpreter runs it in the main thread, between two bytecodes, shortly after
the C-level handler fired).  It appends the signal number to each listening
set's queue and pokes that set's wake-up channel, so a set blocked in its
pool -- in any thread -- returns and delivers the signal as an ordinary
event.  Nothing runs in C signal context, so nothing here needs to be
async-signal-safe.

Discussion: ``signal.set_wakeup_fd`` would write the byte from C, but it is
one fd for the whole process and asyncio takes it; owning a handler per
signal number instead lets any number of event sets and an asyncio loop
coexist, as long as they do not claim the same signal.

Handlers can only be installed and restored in the main thread.  Adding a
signal event elsewhere is refused with a clear error.  If the last listener
leaves from another thread (say an event set closed by a worker), poorio's
handler stays installed until the signal next arrives; then, running in the
main thread, it restores the original disposition and hands it this signal,
so the process behaves as if poorio had never been there.
"""

from __future__ import annotations

import signal
import threading

__all__ = ["listen", "unlisten", "check_signal", "installed"]

_listeners: dict = {}  # signal number -> the event sets listening (a list; order of arrival)
_originals: dict = {}  # signal number -> the disposition poorio replaced


def _name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def check_signal(signum) -> int:
    """``signum`` as an int if it names a signal a handler can be installed for.

    Raises:
        TypeError: ``signum`` is not an int.
        ValueError: it is not a valid signal number here, or it cannot be caught
            (``SIGKILL``, ``SIGSTOP``).
    """
    if isinstance(signum, bool) or not isinstance(signum, int):
        raise TypeError(f"a signal event's source must be a signal number, not {signum!r}")
    if signum not in signal.valid_signals():
        raise ValueError(f"{signum!r} is not a valid signal number on this system")
    if signum in _UNCATCHABLE:
        raise ValueError(f"{_name(signum)} ({int(signum)}) cannot be caught, so it cannot be an event")
    return int(signum)


_UNCATCHABLE = {getattr(signal, name) for name in ("SIGKILL", "SIGSTOP") if hasattr(signal, name)}


def _require_main_thread(signum: int) -> None:
    if threading.current_thread() is not threading.main_thread():
        raise ValueError(
            f"a signal event for {_name(signum)} can only be added in the main thread "
            f"(this is {threading.current_thread().name!r}): Python installs signal handlers there only"
        )


def listen(signum: int, event_set) -> None:
    """Route ``signum`` to ``event_set._signal_arrived`` from now on.

    Raises:
        ValueError: not called in the main thread.
        OSError: the OS refused the handler (real errno).
    """
    _require_main_thread(signum)
    listeners = _listeners.get(signum)
    if listeners is None:
        previous = signal.signal(signum, _handler)
        # None means a handler installed from C that Python cannot put back;
        # the default disposition is the honest fallback.
        _originals[signum] = signal.SIG_DFL if previous is None else previous
        _listeners[signum] = [event_set]
    else:
        listeners.append(event_set)


def unlisten(signum: int, event_set) -> None:
    """Stop routing ``signum`` to ``event_set``; restore the original handler after the last one."""
    listeners = _listeners.get(signum)
    if listeners is None or event_set not in listeners:
        return
    listeners.remove(event_set)
    if not listeners and threading.current_thread() is threading.main_thread():
        del _listeners[signum]
        signal.signal(signum, _originals.pop(signum))


def installed(signum: int) -> bool:
    """Whether poorio's handler is the one installed for ``signum``."""
    return signal.getsignal(signum) is _handler


def _handler(signum: int, frame) -> None:
    listeners = _listeners.get(signum)
    if listeners:
        for event_set in tuple(listeners):
            event_set._signal_arrived(signum)
        return
    # Nobody listens any more: the last listener left from another thread.
    # We are in the main thread now, so put the original back and let it
    # have this signal, as it would have without poorio.
    _listeners.pop(signum, None)
    original = _originals.pop(signum, signal.SIG_DFL)
    signal.signal(signum, original)
    if callable(original):
        original(signum, frame)
    elif original == signal.SIG_DFL:
        signal.raise_signal(signum)
