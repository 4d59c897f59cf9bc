"""The notifier: fd readiness, deadlines, posts from other threads and signals, reported as one list of waiting contexts.

This is the typed heart of the event layer.  A *context* is any object a
caller hands in to be given back when its event happens: the fiber
scheduler hands in fibers and suspensions, the ``EventSet`` facade its
``EventRecord``s.  The notifier never calls a context; ``collect`` returns
the ones whose events happened, and the caller decides what that means.

What it watches, and how each is reported:

``watch(fd, direction, context, kept=None)``
    one context per fd and direction (``READABLE`` or ``WRITABLE``), reported
    once, the first time a ``collect`` sees the fd ready that way (errors
    and hang-ups count as both) -- then forgotten.  ``unwatch`` takes it
    back early.
``add_timer(deadline, context)``
    reported once ``time.monotonic()`` passes ``deadline``; returns a handle
    for ``cancel_timer``.
``post(context)``
    reported by the next ``collect``; any thread may post, and a blocked
    ``collect`` wakes for it.  A post the notifier accepts is either
    reported or, if the notifier closes first, handed back by ``close()``;
    a post it refuses raises ``ClosedResourceError`` -- never lost silently.  ``expect()``/``unexpect()`` count posts some
    thread has promised, so the caller can tell "waiting for a thread" from
    "nothing can ever happen" (``busy()``).
``watch_signal(signum, context)``
    reported each time the signal arrives, until ``unwatch_signal``
    (main thread only; the plumbing is in ``poorio.events.signals``).
``start_read(fd, buffer, offset, context)``, ``start_write(...)``
    where the pool has a proactor (``completes_io``: io_uring), the kernel
    does the read or write itself and ``context`` is reported once it is
    done, with ``context.result`` set first: the byte count or the
    ``OSError``.  The buffer is the kernel's until then.  ``abort(context)``
    asks for an early end; the operation is still reported, once
    (``ECANCELED``, or its real result if it won the race).

**Kept registrations.**  Registering an fd with the kernel and dropping it
again around every wait costs two syscalls.  A waiter that passes a *keep
token* lets its fd stay registered after it is reported -- betting it is
waited on again soon, as a stream's next read is.  The token is the
registration's identity: a waiter with another one (or none) on a kept fd
number may be looking at a new file under a reused number, so the
registration is made afresh.  There are two kinds:

* a ``KeptFd``, which an IO object makes for its fd, promising ``forget(fd)``
  before it closes it.  A finalizer that cannot keep the promise -- it may
  run in any thread, in the middle of the notifier's own work -- hands the
  fd to ``KeptFd.close_later``, which closes it once the registration is
  gone;
* a weak reference to the object a raw wait was given (a socket), which
  promises nothing: a closed socket's number is either free or names
  another object, whose wait then registers afresh.

A kept registration is dropped when it is reported ready with nobody
waiting (it is level triggered: it would be reported again and again), when
its room is needed, and by ``forget``.  If a kept fd is closed while its
file lives on in a duplicate (a forked child, ``dup()``), epoll keeps
reporting the old file under that number where no removal can reach it;
``collect`` notices an fd it never registered and has the pool rebuild its
kernel object (``_stale``), so nothing spins.

A ``collect`` never blocks past the next deadline, nor at all while a post
or a signal waits to be reported.  One thread drives a notifier; ``post``,
``wake`` and ``KeptFd.close_later`` may be called from any thread.
"""

from __future__ import annotations

from collections import deque
from time import monotonic

from ..errors import AlreadyRegisteredError, BackendUnavailableError, ClosedResourceError, PoolFullError
from ..platform import (
    ERROR, HANGUP, MAX_CAPACITY, READABLE, WRITABLE, check_capacity, default_capacity, fd_is_gone, new_pool,
    relayed_proactor,
)
from ..platform.wakeup import Waker
from ..record import Record
from .timers import TimerHeap

__all__ = ["Notifier", "NotifierStatistics", "KeptFd"]

# An error or hang-up wakes both directions: the owner retries its syscall
# and meets the real error (or end of file) there.
_RMASK = READABLE | ERROR | HANGUP
_WMASK = WRITABLE | ERROR | HANGUP


class KeptFd:
    """An fd whose registration may outlive each wait; its owner promises ``forget(fd)`` before closing it.

    Make one per open file and pass it with every wait on it.  The notifier
    records itself here when it keeps the registration, so that the owner's
    finalizer can close the fd safely with ``close_later``.
    """

    __slots__ = ("fd", "notifier")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.notifier = None  # the notifier that last kept it registered

    def close_later(self, close) -> None:
        """Call ``close()`` once no notifier holds the fd registered (for finalizers; any thread)."""
        notifier = self.notifier
        if notifier is None or not notifier.defer_close(self.fd, close):
            close()

    def __repr__(self) -> str:
        return f"<KeptFd {self.fd}>"


class _Fd:
    """One registered fd: who waits on it each way, what the pool watches, and whether it is kept."""

    __slots__ = ("reader", "writer", "flags", "kept")

    def __init__(self, flags: int, kept) -> None:
        self.reader = None  # the context waiting for READABLE
        self.writer = None  # the context waiting for WRITABLE
        self.flags = flags  # what the pool watches the fd for
        self.kept = kept  # the KeptFd the registration belongs to, or None: dropped when nobody waits


class NotifierStatistics(Record):
    """A frozen snapshot of a ``Notifier``: backend, capacity, fds registered and waited on, timers, posts, signals."""

    __slots__ = (
        "backend", "capacity", "fds", "watching", "timers", "posted", "expected", "signals", "operations", "rebuilds",
    )  # fmt: skip


class Notifier:
    """Watches fds, deadlines, posts and signals for one thread; ``collect`` reports what happened.

    ``capacity`` bounds how many fds are registered at once (default: the
    process's fd limit, ``poorio.platform.default_capacity()``, so the
    kernel's ``EMFILE`` comes before a full notifier); ``backend`` picks the
    pool's mechanism (default: the best here, or ``POORIO_BACKEND``).  The
    notifier's own wake-up channel (two fds) is not counted against
    ``capacity``.

    Raises:
        ValueError: ``capacity`` is not an int from 1 to ``MAX_CAPACITY - 1``.
        BackendUnavailableError: ``backend`` does not exist or cannot run here.
    """

    __slots__ = (
        "capacity", "now", "_pool", "_proactor", "_waker", "_wake_fd", "_fds", "_watching", "_timers", "_posted",
        "_expected", "_signals", "_arrived", "_closing", "_waiting", "_closed", "_rebuilds", "_operations", "_relayed",
    )  # fmt: skip

    def __init__(self, capacity: int | None = None, backend: str | None = None) -> None:
        if capacity is None:
            capacity = min(default_capacity(), MAX_CAPACITY - 1)
        self.capacity = capacity = check_capacity(capacity, MAX_CAPACITY - 1)  # one more: the wake-up channel
        pool = new_pool(capacity + 1, backend)  # + the wake-up channel
        try:
            waker = Waker()
            try:
                pool.add(waker.fileno(), READABLE)
            except BaseException:
                waker.close()
                raise
        except BaseException:
            pool.close()
            raise
        proactor = pool.proactor  # a uring.Ring sharing the pool's wait
        relayed = None
        if proactor is None:  # Windows: IOCP beside WSAPoll, its completions relayed through the waker
            try:
                proactor = relayed = relayed_proactor(capacity, waker.wake)
            except BaseException:
                pool.close()
                waker.close()
                raise
        self._pool = pool
        self._proactor = proactor  # or None: readiness only
        self._relayed = relayed  # a proactor this notifier owns, closed with it
        self._operations = 0  # submitted to the proactor and not yet reported
        self._waker = waker
        self._wake_fd = waker.fileno()  # in the pool, but never in _fds
        self._fds: dict = {}  # fd -> _Fd, for every fd registered in the pool (the waker aside)
        self._watching = 0  # contexts waiting on fds
        self._timers = TimerHeap()
        self._posted: deque = deque()  # contexts posted since the last collect (any thread appends)
        self._expected = 0  # posts promised by other threads, not yet made
        self._signals: dict = {}  # signal number -> its context
        self._arrived: deque = deque()  # signal numbers caught since the last collect
        self._closing: deque = deque()  # (fd, close) handed over by KeptFd.close_later (any thread)
        self._waiting = False  # True around the pool wait: posters must wake us
        self._closed = False
        self._rebuilds = 0  # kernel objects made afresh to drop a registration that outlived its fd
        self.now = monotonic()  # the clock as of the last collect, for cheap "since when"

    # -- fds -----------------------------------------------------------------------

    def watch(self, fd: int, direction: int, context, kept: KeptFd | None = None) -> None:
        """Report ``context`` once ``fd`` is ready for ``direction`` (``READABLE`` or ``WRITABLE``).

        ``kept``: a keep token (a ``KeptFd``, or a weak reference to the
        object waited on): leave the fd registered after the report (see the
        module docstring).

        Raises:
            AlreadyRegisteredError: a context already waits on ``fd`` that way.
            PoolFullError: ``capacity`` fds are registered and none can be dropped.
            ValueError: ``fd`` is the notifier's own wake-up channel.
            ClosedResourceError: the notifier is closed.
            OSError: the kernel refused the fd (e.g. ``EBADF``), unmodified.
        """
        rec = self._fds.get(fd)
        if rec is None:
            rec = self._register(fd, direction, kept)
        else:
            if rec.kept is not kept and rec.reader is None and rec.writer is None and rec.kept != kept:
                # An idle kept registration, and a waiter that is not its owner:
                # the number may name a new file by now.  Register afresh.
                self._drop(fd)
                rec = self._register(fd, direction, kept)
            elif not rec.flags & direction:
                self._pool.modify(fd, rec.flags | direction)
                rec.flags |= direction
        if direction == READABLE:
            if rec.reader is not None:
                raise AlreadyRegisteredError(f"fd {fd} already has a reader waiting")
            rec.reader = context
        else:
            if rec.writer is not None:
                raise AlreadyRegisteredError(f"fd {fd} already has a writer waiting")
            rec.writer = context
        self._watching += 1

    def _register(self, fd: int, direction: int, kept) -> _Fd:
        if self._closed:
            raise ClosedResourceError("the notifier is closed")
        if fd == self._wake_fd:
            raise ValueError(f"fd {fd} is the notifier's own wake-up channel")
        if len(self._fds) >= self.capacity and not self._evict():
            raise PoolFullError(f"the notifier is full: it watches its capacity of {self.capacity} fds")
        self._pool.add(fd, direction)
        rec = self._fds[fd] = _Fd(direction, kept)
        if kept.__class__ is KeptFd:
            kept.notifier = self
        return rec

    def unwatch(self, fd: int, direction: int, context) -> bool:
        """Take back ``context``'s wait on ``fd``; False if it is not waiting there (already reported)."""
        rec = self._fds.get(fd)
        if rec is None:
            return False
        if direction == READABLE:
            if rec.reader is not context:
                return False
            rec.reader = None
        else:
            if rec.writer is not context:
                return False
            rec.writer = None
        self._watching -= 1
        if rec.kept is None:
            self._narrow(fd, rec, rec.flags)
        return True

    def forget(self, fd: int) -> list:
        """Drop ``fd`` from the pool now, before it is closed; return the contexts that waited on it.

        The proactor forgets it too (IOCP: a handle it has seen), as the
        number may come back.  Safe for an fd the notifier never saw
        (returns ``[]``).
        """
        if self._proactor is not None and not self._closed:
            self._proactor.forget(fd)
        rec = self._fds.get(fd)
        if rec is None:
            return []
        waiting = [ctx for ctx in (rec.reader, rec.writer) if ctx is not None]
        self._drop(fd)
        return waiting

    def defer_close(self, fd: int, close) -> bool:
        """Have the next ``collect`` drop ``fd`` and then call ``close()``; False if the notifier is closed.

        Thread-safe; for ``KeptFd.close_later`` and finalizers.  The fd stays
        open until its registration is gone (and the proactor has forgotten
        it), so its number cannot be reused meanwhile.
        """
        if self._closed:
            return False
        self._closing.append((fd, close))
        if self._closed:  # close() ran meanwhile and may have missed it
            self._run_closes()
        elif self._waiting:
            self._waker.wake()
        return True

    def _drop(self, fd: int) -> None:
        rec = self._fds.pop(fd)
        self._watching -= (rec.reader is not None) + (rec.writer is not None)
        self._pool.remove(fd)  # the pool tolerates an fd the kernel already forgot

    def _narrow(self, fd: int, rec: _Fd, stale: int) -> None:
        """Stop watching ``fd`` for the ``stale`` directions nobody waits for."""
        want = (READABLE if rec.reader is not None else 0) | (WRITABLE if rec.writer is not None else 0)
        flags = rec.flags & ~(stale & ~want)
        if flags == rec.flags:
            return
        if not flags:
            self._drop(fd)
            return
        try:
            self._pool.modify(fd, flags)
        except OSError as error:
            if not fd_is_gone(error):
                raise
            # Closed behind our back: the kernel already forgot it.  Whoever
            # still waits is reported next time; its retry meets the real error.
            self._posted.extend(ctx for ctx in (rec.reader, rec.writer) if ctx is not None)
            self._drop(fd)
            return
        rec.flags = flags

    def release(self, fd: int, direction: int) -> None:
        """Stop watching ``fd`` for ``direction`` now if nobody waits that way (a kept registration too)."""
        rec = self._fds.get(fd)
        if rec is not None:
            self._narrow(fd, rec, direction)

    def release_idle(self) -> bool:
        """Drop every registration nobody waits on; whether there were any."""
        return self._evict()

    def interest(self, fd: int) -> int:
        """What the pool watches ``fd`` for (``READABLE``/``WRITABLE`` bits); 0 if it is not registered."""
        rec = self._fds.get(fd)
        return 0 if rec is None else rec.flags

    def _evict(self) -> bool:
        """Drop the kept registrations nobody waits on; whether there were any."""
        idle = [fd for fd, rec in self._fds.items() if rec.reader is None and rec.writer is None]
        for fd in idle:
            self._drop(fd)
        return bool(idle)

    # -- timers, posts, signals ----------------------------------------------------

    def add_timer(self, deadline: float, context) -> list:
        """Report ``context`` once ``time.monotonic()`` reaches ``deadline``; returns the handle for ``cancel_timer``."""
        return self._timers.push(deadline, context)

    def cancel_timer(self, handle: list) -> bool:
        """Disarm a timer; False if it was already reported or cancelled."""
        return self._timers.cancel(handle)

    def first_deadline(self) -> float | None:
        """The earliest armed deadline, or None."""
        return self._timers.first()

    def post(self, context) -> None:
        """Report ``context`` in the next ``collect``.  Thread-safe: wakes a blocked ``collect``.

        Raises:
            ClosedResourceError: the notifier is closed.
        """
        if self._closed:
            raise ClosedResourceError("the notifier is closed")
        # Discussion: append before reading _waiting, while collect sets
        # _waiting before it looks at the queue -- so either it sees our
        # context or we see it waiting and wake it.
        self._posted.append(context)
        if self._closed:  # close() ran meanwhile: take ours back, unless it took it
            try:
                self._posted.remove(context)
            except ValueError:
                return  # close() has it and hands it back
            raise ClosedResourceError("the notifier is closed")
        if self._waiting:
            self._waker.wake()

    def expect(self) -> None:
        """Some thread promises a ``post``: stay ``busy()`` until ``unexpect()`` (driving thread)."""
        self._expected += 1

    def unexpect(self) -> None:
        """The promise of an ``expect()`` was kept or withdrawn (driving thread)."""
        self._expected -= 1

    def wake(self) -> None:
        """Make a blocked ``collect`` return now.  Thread-safe; a no-op once closed."""
        self._waker.wake()

    def watch_signal(self, signum: int, context) -> None:
        """Report ``context`` each time signal ``signum`` arrives, until ``unwatch_signal`` (main thread).

        Raises:
            TypeError, ValueError: not a catchable signal number here, or not the main thread.
            AlreadyRegisteredError: ``signum`` already has a context here.
            ClosedResourceError: the notifier is closed.
        """
        from . import signals  # signals are rare: keep them off the import path

        signum = signals.check_signal(signum)
        if self._closed:
            raise ClosedResourceError("the notifier is closed")
        if signum in self._signals:
            raise AlreadyRegisteredError(f"signal {signum} already has a context in this notifier")
        signals.listen(signum, self)
        self._signals[signum] = context

    def unwatch_signal(self, signum: int) -> None:
        """Stop reporting ``signum`` (restoring the original handler after the last listener)."""
        if self._signals.pop(signum, None) is not None:
            from . import signals

            signals.unlisten(signum, self)

    def signal_arrived(self, signum: int) -> None:
        """Called by poorio's signal handler (main thread) for a signal watched here."""
        self._arrived.append(signum)
        self._waker.wake()

    @property
    def waker(self) -> Waker:
        """The wake-up channel (``signals`` points the process's wake-up fd at it)."""
        return self._waker

    # -- operations the kernel completes (a proactor's) ---------------------------

    @property
    def completes_io(self) -> bool:
        """Whether there is a proactor, so ``start_read``/``start_write`` work (io_uring; IOCP on Windows)."""
        return self._proactor is not None

    def start_read(self, fd, buffer, offset: int, context) -> None:
        """Read into ``buffer`` at file ``offset`` (-1: the file position); report ``context`` when done.

        ``context.result`` is set before the report: the bytes read (0 at
        the end) or the ``OSError``.  ``buffer`` (writable) is the kernel's
        until then.  ``context`` is the operation's name: hashable, one
        operation at a time.

        Raises:
            BackendUnavailableError: the pool has no proactor (``completes_io`` is False).
            PoolFullError: ``capacity`` operations are in flight.
            TypeError: ``buffer`` is read-only.
            ClosedResourceError: the notifier is closed.
        """
        self._operator().submit_read(fd, buffer, offset, context)
        self._operations += 1

    def start_write(self, fd, data, offset: int, context) -> None:
        """Write ``data`` at file ``offset`` (-1: the file position); report ``context`` when done.

        As ``start_read``; ``context.result`` is the bytes written (maybe
        fewer than asked) or the ``OSError``.
        """
        self._operator().submit_write(fd, data, offset, context)
        self._operations += 1

    def abort(self, context) -> bool:
        """Ask for ``context``'s operation to end early; False if none is in flight.

        It is still reported, once: ``result`` is ``OSError(ECANCELED)``, or
        the real outcome if the operation won the race (then the bytes *were*
        moved).  Its buffer stays the kernel's until that report.
        """
        proactor = self._proactor
        return proactor is not None and proactor.cancel(context)

    def _operator(self):
        if self._closed:
            raise ClosedResourceError("the notifier is closed")
        if self._proactor is None:
            raise BackendUnavailableError(
                f"the {self._pool.backend} backend completes no operations: it only reports readiness"
            )
        return self._proactor

    # -- collecting ------------------------------------------------------------------

    def busy(self) -> bool:
        """Whether anything could still be reported: an fd or signal waited on, a timer armed, a post due, an operation in flight."""
        return bool(
            self._watching or self._timers.heap or self._expected or self._posted or self._signals
            or self._operations
        )

    def collect(self, timeout: float | None = None) -> list:
        """Wait up to ``timeout`` seconds (None: until the next deadline or event) and return the contexts reported.

        Never blocks past the next deadline, and not at all while posts or
        signals wait.  Returns ``[]`` when nothing happened in time.

        Raises:
            ClosedResourceError: the notifier is closed.
            OSError: the pool's wait failed (other than by ``EINTR``).
        """
        if self._closing:
            self._run_closes()
        fired: list = []
        timers = self._timers
        self._waiting = True  # before looking at the queues -- see post()
        try:
            if self._posted or self._arrived:
                timeout = 0.0
            elif timeout != 0.0 and timers.heap:
                first = timers.first()
                if first is not None:
                    delay = first - monotonic()
                    if timeout is None or delay < timeout:
                        timeout = delay if delay > 0.0 else 0.0
            ready = self._pool.cycle(timeout)
        finally:
            self._waiting = False

        posted = self._posted
        for _ in range(len(posted)):
            fired.append(posted.popleft())

        if ready:
            fds = self._fds
            reported = 0
            for fd, flags in ready:
                rec = fds.get(fd)
                if rec is None:
                    if fd == self._wake_fd:
                        self._waker.drain()
                    else:  # a registration the kernel kept for a closed fd: see _stale
                        self._stale()
                    continue
                reader = rec.reader
                if flags == READABLE and reader is not None and rec.kept is not None:
                    # By far the most frequent report: a kept fd readable for
                    # its reader.  The registration stays as it is.
                    rec.reader = None
                    fired.append(reader)
                    reported += 1
                    continue
                writer = rec.writer
                if reader is not None and flags & _RMASK:
                    rec.reader = None
                    fired.append(reader)
                    reported += 1
                if writer is not None and flags & _WMASK:
                    rec.writer = None
                    fired.append(writer)
                    reported += 1
                if rec.kept is None:
                    self._narrow(fd, rec, rec.flags)
                else:  # kept: drop only what was ready with nobody waiting
                    stale = flags & (READABLE | WRITABLE)
                    if flags & (ERROR | HANGUP):
                        stale = READABLE | WRITABLE
                    if reader is not None:
                        stale &= ~READABLE
                    if writer is not None:
                        stale &= ~WRITABLE
                    if stale & rec.flags:
                        self._narrow(fd, rec, stale)
            self._watching -= reported

        if self._operations:  # no call on the hot path unless some are in flight
            for context, result, _flags in self._proactor.completions():
                context.result = result
                fired.append(context)
                self._operations -= 1

        arrived = self._arrived
        if arrived:
            signals = self._signals
            for _ in range(len(arrived)):
                context = signals.get(arrived.popleft())
                if context is not None:
                    fired.append(context)

        now = self.now = monotonic()
        if timers.heap:
            timers.pop_due(now, fired)
        return fired

    def _stale(self) -> None:
        """The pool reported an fd it was never asked to watch: epoll's registration of a closed fd.

        It happens when an fd is closed while registered and its file lives
        on in a duplicate (a forked child, ``dup()``): epoll then keeps
        reporting the old file under that number, level-triggered, and no
        removal can reach it -- the loop would spin.  A new kernel object,
        made from the registrations the pool holds, drops it.
        """
        self._rebuilds += 1
        self._pool.rebuild()

    def _run_closes(self) -> None:
        closing = self._closing
        while closing:
            try:
                fd, close = closing.popleft()
            except IndexError:  # another thread took the last one
                return
            try:
                if self._proactor is not None and not self._closed:
                    self._proactor.forget(fd)
                rec = self._fds.get(fd)
                if rec is not None and rec.reader is None and rec.writer is None and not self._closed:
                    self._drop(fd)
            finally:
                close()

    # -- the rest ----------------------------------------------------------------------

    @property
    def backend(self) -> str:
        return self._pool.backend

    @property
    def closed(self) -> bool:
        return self._closed

    def room(self) -> int:
        """How many more fds can be registered now: ``capacity`` less the fds registered.

        A kept registration counts as taken: it is most likely waited on
        again soon (it is dropped to make room only when a new fd needs its
        slot).
        """
        return self.capacity - len(self._fds)

    def statistics(self) -> NotifierStatistics:
        """A frozen snapshot of what the notifier holds."""
        return NotifierStatistics(
            backend=self._pool.backend,
            capacity=self.capacity,
            fds=len(self._fds),
            watching=self._watching,
            timers=len(self._timers),
            posted=len(self._posted),
            expected=self._expected,
            signals=len(self._signals),
            operations=self._operations,
            rebuilds=self._rebuilds,
        )

    def close(self) -> list:
        """Stop watching everything (restoring signal handlers); close the pool and the wake-up channel.

        Idempotent.  The fds watched are not closed; contexts still waiting
        are dropped.  Returns the posted contexts never reported, so their
        posters can be told (``[]`` when already closed).
        """
        if self._closed:
            return []
        self._closed = True
        undelivered = []
        try:
            for signum in list(self._signals):
                self.unwatch_signal(signum)
            self._timers.clear()
            self._fds.clear()
            self._watching = self._operations = 0
            posted = self._posted
            while posted:
                undelivered.append(posted.popleft())
        finally:
            try:
                if self._relayed is not None:  # before the waker: its relay thread wakes through it
                    self._relayed.close()
            finally:
                self._pool.close()
                self._waker.close()
            self._run_closes()
        return undelivered

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._closed:
            return f"<Notifier {self._pool.backend} closed>"
        return (
            f"<Notifier {self._pool.backend} fds={len(self._fds)}/{self.capacity} "
            f"watching={self._watching} timers={len(self._timers)}>"
        )
