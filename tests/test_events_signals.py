"""Signals as events: sent to this very process with os.kill, original handlers put back afterwards.

Windows has no SIGUSR1 and no os.kill to itself; there, Ctrl-C as Windows
delivers it (a flag for the main thread, which interrupt_main imitates) is
the one signal that runs.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time

import pytest

from events_support import backend, drain, es  # noqa: F401 (fixtures)
from poorio.events import signals as _signals
from poorio.errors import AlreadyRegisteredError
from poorio.events import REASON_SIGNAL, EventSet

posix_signals = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs POSIX signals")


@pytest.fixture
def recorder():
    """A Python handler installed for SIGUSR1 before the test: what poorio must put back."""
    calls = []

    def handler(signum, frame):
        calls.append(signum)

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        yield handler, calls
    finally:
        signal.signal(signal.SIGUSR1, previous)


def kill_self(signum: int) -> None:
    os.kill(os.getpid(), signum)


@posix_signals
def test_one_shot_signal_event_then_the_original_handler_is_back(es, recorder):
    handler, calls = recorder
    sid = es.add("s", signal.SIGUSR1, "ctx")
    assert signal.getsignal(signal.SIGUSR1) is not handler
    kill_self(signal.SIGUSR1)
    [ev] = list(es(False))
    assert (ev.id, ev.kind, ev.reason, ev.source, ev.context) == (sid, "s", REASON_SIGNAL, signal.SIGUSR1, "ctx")
    assert calls == []  # the event took it, not the original handler
    assert signal.getsignal(signal.SIGUSR1) is handler
    kill_self(signal.SIGUSR1)
    assert calls == [signal.SIGUSR1]


@posix_signals
def test_persistent_signal_event_coalesces_between_collections(es):
    sid = es.add("S", signal.SIGUSR2)
    kill_self(signal.SIGUSR2)
    assert drain(es) == [(sid, "signal", 0)]
    kill_self(signal.SIGUSR2)
    kill_self(signal.SIGUSR2)
    assert drain(es) == [(sid, "signal", 0)]  # delivered once, like a pending signal
    assert drain(es) == []
    es.delete(sid)
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL


@posix_signals
def test_a_signal_wakes_a_blocked_loop(es):
    sid = es.add("s", signal.SIGUSR1)
    sender = threading.Timer(0.05, kill_self, (signal.SIGUSR1,))
    sender.start()
    try:
        assert drain(es, True) == [(sid, "signal", 0)]  # the hang guard fails this if it never comes
    finally:
        sender.join()


@posix_signals
def test_close_restores_every_handler(backend, recorder):
    handler, calls = recorder
    with EventSet(backend=backend) as es:
        es.add("S", signal.SIGUSR1)
        es.add("s", signal.SIGUSR2)
        assert _signals.installed(signal.SIGUSR1) and _signals.installed(signal.SIGUSR2)
    assert signal.getsignal(signal.SIGUSR1) is handler
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL


@posix_signals
def test_two_sets_share_a_signal(backend, recorder):
    handler, calls = recorder
    with EventSet(backend=backend) as one, EventSet(backend=backend) as two:
        first = one.add("S", signal.SIGUSR1)
        second = two.add("s", signal.SIGUSR1)
        kill_self(signal.SIGUSR1)
        assert drain(one) == [(first, "signal", 0)]
        assert drain(two) == [(second, "signal", 0)]
        assert _signals.installed(signal.SIGUSR1)  # one still listens
        one.delete(first)
        assert signal.getsignal(signal.SIGUSR1) is handler
    assert calls == []


@posix_signals
def test_signal_errors_name_the_value(es):
    with pytest.raises(ValueError, match="SIGKILL"):
        es.add("s", signal.SIGKILL)
    with pytest.raises(ValueError, match="99999"):
        es.add("S", 99999)
    with pytest.raises(TypeError, match="'USR1'"):
        es.add("s", "USR1")
    sid = es.add("s", signal.SIGUSR1)
    with pytest.raises(AlreadyRegisteredError, match=f"signal {int(signal.SIGUSR1)} already has an event.*id {sid}"):
        es.add("S", signal.SIGUSR1)
    es.delete(sid)
    assert len(es) == 0


@posix_signals
def test_signal_events_need_the_main_thread(es):
    errors = []

    def worker():
        try:
            es.add("s", signal.SIGUSR1)
        except ValueError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=worker, name="not-main")
    thread.start()
    thread.join()
    assert len(errors) == 1 and "main thread" in errors[0] and "SIGUSR1" in errors[0] and "not-main" in errors[0]
    assert len(es) == 0 and not _signals.installed(signal.SIGUSR1)


@posix_signals
def test_closed_in_another_thread_the_original_gets_the_next_signal(backend, recorder):
    handler, calls = recorder
    es = EventSet(backend=backend)
    es.add("S", signal.SIGUSR1)
    closer = threading.Thread(target=es.close)
    closer.start()
    closer.join()
    assert es.closed
    # Handlers can only be restored in the main thread: poorio's stays until
    # the signal comes, then hands it over and puts the original back.
    assert _signals.installed(signal.SIGUSR1)
    kill_self(signal.SIGUSR1)
    assert calls == [signal.SIGUSR1]
    assert signal.getsignal(signal.SIGUSR1) is handler


@posix_signals
@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="needs pthread_sigmask")
def test_a_signal_caught_in_another_thread_still_ends_the_main_threads_wait(es):
    """The wait cannot be interrupted (the main thread blocks the signal): only the C-level wake-up ends it.

    This is also what a signal arriving just before the wait began looks like:
    its Python handler is pending, and nothing else would end the wait.
    """
    sid = es.add("s", signal.SIGUSR1)
    go = threading.Event()
    sender = threading.Thread(target=lambda: go.wait(10) and kill_self(signal.SIGUSR1))
    sender.start()  # before the mask changes: this thread can take the signal
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
    try:
        go.set()
        start = time.monotonic()
        assert drain(es, 30.0) == [(sid, "signal", 0)]
        assert time.monotonic() - start < 15  # woken by the signal, not by the end of the wait
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGUSR1])
        sender.join()


def test_ctrl_c_wakes_a_blocked_loop(es):
    sid = es.add("s", signal.SIGINT)
    # Sent from another thread, so the main thread's wait is not interrupted:
    # only the wake-up fd (POSIX) or WSAPoll's 100 ms slices (Windows) let the
    # handler run.  Windows has no kill() for this (os.kill ends the process);
    # elsewhere a real SIGINT, because PyPy's interrupt_main only sets a flag.
    if sys.platform == "win32":
        send = _thread.interrupt_main
    else:
        def send():
            os.kill(os.getpid(), signal.SIGINT)
    sender = threading.Timer(0.05, send)
    sender.start()
    start = time.monotonic()
    try:
        assert drain(es, 30.0) == [(sid, "signal", 0)]
        assert time.monotonic() - start < 15  # woken by the signal, not by the end of the wait
    finally:
        sender.join()
