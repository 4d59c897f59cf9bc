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

Discussion: owning a handler per signal number, rather than reading signal
numbers from ``signal.set_wakeup_fd``'s one fd, lets any number of event
sets and an asyncio loop coexist, as long as they do not claim the same
signal.  But a Python-level handler alone can lose a wake-up: if the signal
arrives after the main thread last checked for pending handlers and before
it entered the kernel's wait (``epoll_wait`` and friends), the wait is not
interrupted and the handler runs only when something else ends it -- never,
for a loop with nothing else to wait for (a child's one ``SIGCHLD``).  So
while anything listens, the process's wake-up fd -- written from C, at once
-- is a duplicate of the waker of the event set that listened last, which
makes that set's wait return; the handler then runs and routes the signal.
If someone else (asyncio) holds the wake-up fd already, poorio leaves it
alone and keeps only the handler.  The duplicates keep the pipe open even
if the set is closed from another thread, so the C handler never writes to
a closed fd number that may name someone else's file.

Handlers can only be installed and restored in the main thread.  Adding a
signal event elsewhere is refused with a clear error.  If the last listener
leaves from another thread (say an event set closed by a worker), poorio's
handler stays installed until the signal next arrives; then, running in the
main thread, it restores the original disposition and hands it this signal,
so the process behaves as if poorio had never been there.
"""

from __future__ import annotations

import os
import signal
import threading

from ..platform.facts import SIGNAL_WAKEUP_BY_DUP

__all__ = ["listen", "unlisten", "check_signal", "installed"]

_listeners: dict = {}  # signal number -> the notifiers listening (a list; order of arrival)
_originals: dict = {}  # signal number -> the disposition poorio replaced
_orphaned: set = set()  # signal numbers whose last listener left from another thread: handler still in
_wakeup = None  # (notifier, write dup, read dup) while the process's wake-up fd is poorio's
_busy = False  # listen()/unlisten() is changing the tables in the main thread (the handler may interrupt it)


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


def listen(signum: int, listener) -> None:
    """Route ``signum`` to ``listener.signal_arrived(signum)`` from now on.

    A listener (a ``Notifier``) offers ``signal_arrived(signum)`` and
    ``waker``, its wake-up channel.

    Raises:
        ValueError: not called in the main thread.
        OSError: the OS refused the handler (real errno).
    """
    global _busy
    _require_main_thread(signum)
    _busy = True
    try:
        _point_wakeup_at(listener)
        _orphaned.discard(signum)  # from here on, a signal is delivered, never handed back
        listeners = _listeners.get(signum)
        if listeners is not None:
            listeners.append(listener)
        else:
            _listeners[signum] = [listener]  # before the handler: a signal right after it has a listener
            try:
                previous = signal.signal(signum, _handler)
            except BaseException:
                del _listeners[signum]
                _update_wakeup()
                raise
            # None means a handler installed from C that Python cannot put back;
            # the default disposition is the honest fallback.
            _originals[signum] = signal.SIG_DFL if previous is None else previous
    finally:
        _busy = False


def unlisten(signum: int, listener) -> None:
    """Stop routing ``signum`` to ``listener``; restore the original handler after the last one."""
    global _busy
    listeners = _listeners.get(signum)
    if listeners is None or listener not in listeners:
        return
    listeners.remove(listener)
    if threading.current_thread() is not threading.main_thread():
        if not listeners:
            _orphaned.add(signum)  # the handler puts the original back when the signal comes
        return
    _busy = True
    try:
        if not listeners:
            _orphaned.discard(signum)
            del _listeners[signum]
            signal.signal(signum, _originals.pop(signum))
        _update_wakeup()
    finally:
        _busy = False


def installed(signum: int) -> bool:
    """Whether poorio's handler is the one installed for ``signum``."""
    return signal.getsignal(signum) is _handler


def _handler(signum: int, frame) -> None:
    # Discussion: this runs between two bytecodes of the main thread, so
    # possibly in the middle of listen() or unlisten().  It only ever reads
    # the listeners, except for a signal marked orphaned, outside them.
    listeners = _listeners.get(signum)
    if listeners:
        for listener in tuple(listeners):
            listener.signal_arrived(signum)
        return
    if signum not in _orphaned or _busy:
        return  # a listener is coming or going right now: nobody listens to this one
    # The last listener left from another thread.  We are in the main thread
    # now, so put the original back and let it have this signal, as it would
    # have without poorio.
    _orphaned.discard(signum)
    _listeners.pop(signum, None)
    original = _originals.pop(signum, signal.SIG_DFL)
    signal.signal(signum, original)
    _update_wakeup()
    if callable(original):
        original(signum, frame)
    elif original == signal.SIG_DFL:
        signal.raise_signal(signum)


def _point_wakeup_at(listener) -> None:
    """Make the process's wake-up fd write into ``listener``'s waker (main thread; POSIX only)."""
    global _wakeup
    if not SIGNAL_WAKEUP_BY_DUP or (_wakeup is not None and _wakeup[0] is listener):
        return
    waker = listener.waker
    write = os.dup(waker.write_fileno())  # non-blocking and close-on-exec, like the original
    try:
        read = os.dup(waker.fileno())  # keeps the pipe open: a write never hits a closed reader
    except OSError:
        os.close(write)
        raise
    previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    if _wakeup is None and previous != -1:  # someone else's: keep theirs, and only the handler
        signal.set_wakeup_fd(previous)
        os.close(write)
        os.close(read)
        return
    old, _wakeup = _wakeup, (listener, write, read)
    if old is not None:
        os.close(old[1])
        os.close(old[2])


def _update_wakeup() -> None:
    """After a listener left (main thread): point the wake-up fd at one still listening, or give it back."""
    global _wakeup
    if _wakeup is None:
        return
    remaining = [listener for listeners in _listeners.values() for listener in listeners]
    if _wakeup[0] in remaining:
        return
    if remaining:
        _point_wakeup_at(remaining[-1])
        return
    _, write, read = _wakeup
    _wakeup = None
    current = signal.set_wakeup_fd(-1)
    if current != write:  # someone took it over since: leave theirs in place
        signal.set_wakeup_fd(current)
    os.close(write)
    os.close(read)
