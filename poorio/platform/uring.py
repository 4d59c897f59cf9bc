"""io_uring through ctypes: Linux's completion rings, as a proactor and as a readiness pool.

io_uring is two rings shared between a process and the kernel: the process
writes *submission queue entries* (SQEs: "receive into this buffer",
"poll this fd") and bumps the SQ tail; the kernel performs them and writes
*completion queue entries* (CQEs: user_data, result, flags) and bumps the
CQ tail.  One ``io_uring_enter`` submits a batch and may wait.  Here the
rings are mapped with mmap(2) and read and written through ``memoryview``
and ``struct`` (``_uring.Rings``); this module adds the two things poorio
builds on them: ``Ring``, a small proactor, and ``SocketIoPool``, the
level-triggered readiness pool of the platform contract.

**Memory ordering, and why plain loads and stores from Python are sound.**
The ring protocol (the comment atop the kernel's ``io_uring/io_uring.c``)
asks for an acquire when reading the kernel's CQ tail, a release (or a
full barrier) when storing our CQ head, and a release when storing our SQ
tail -- because in general the kernel side runs on *another CPU*.  liburing
does this with C11 atomics (``io_uring_smp_load_acquire``: LDAR on arm64, a
plain MOV on x86-64, whose TSO model gives every load acquire and every
store release semantics).  Python cannot issue LDAR or STLR: ``struct``
and ``memoryview`` compile to plain loads and stores (CPython's fixed-size
``memcpy``; PyPy's raw accesses), the GIL orders Python threads among
themselves but nothing against the kernel, and a syscall is not a memory
barrier on arm64 (exception entry and return synchronise *context*, not
memory).  On x86-64 the plain accesses would happen to be enough; on arm64
they are not, so poorio removes the other CPU instead of fencing against it:

* no ``SQPOLL``: the kernel reads the SQ tail and the SQEs only inside our
  own ``io_uring_enter``, on our own thread, so program order is all the
  order there is (liburing stores the SQ tail with a plain store in exactly
  this case: "without SQPOLL, sq is only accessed by the kernel in response
  to a system call, so no synchronization is necessary");
* ``IORING_SETUP_DEFER_TASKRUN`` with ``SINGLE_ISSUER``, on Linux 6.2 or
  later: every CQE -- of an inline completion, a poll wake-up, a timer, an
  io-wq worker's blocking read -- is posted by task work that runs only in
  the owning thread's ``io_uring_enter(GETEVENTS)`` (the kernel's
  ``ctx->task_complete``: "all CQEs should be posted only by the submitter
  task"; 6.1 still let io-wq threads post, so ``probe`` refuses it).  The
  CQ tail, the CQEs and our CQ head are therefore written and read by one
  thread, in program order; a migration to another CPU is a context switch,
  which is a full barrier.  So no acquire or release is needed on any
  architecture, and the 32-bit indices need not even be read atomically.
  The data in *our buffers* may be written on another CPU (io-wq, DMA);
  the kernel publishes it to us through its own synchronisation (the
  task-work list's fully ordered cmpxchg) before the CQE is posted here.

The premise "one thread" is enforced by the kernel, not hoped for: with
``SINGLE_ISSUER`` another thread's ``io_uring_enter`` fails with
``EEXIST``.  Rings start disabled (``R_DISABLED``) and are enabled by the
first wait, so the owner is the thread that first waits, not the one that
happened to create the object.

**Sharp edges of the readiness pool.**  ``POLL_ADD`` is one-shot (multishot
poll reports wake-ups, i.e. edges), so level triggering is rebuilt: an fd
reported by a cycle gets a fresh ``POLL_ADD`` before the next wait, which
completes inside that very submission if the fd is still ready -- one SQE
per ready fd per cycle, all in the one ``io_uring_enter`` that waits.  An
armed poll holds a reference to the *open file*: closing a registered fd
does not close its file (a pipe's reader sees no EOF) until ``remove``.
poorio's rule, remove before you close, matters even more here.  ``add``
checks the fd (``EBADF`` now, as ``epoll_ctl`` would say), but the fd
number is resolved when the SQE is submitted, at the next cycle, as poll(2)
resolves it at every call.

**The proactor contract** (``Ring``; ``iocp.Port`` has the same names), on
which the scheduler's proactor path builds (``Notifier.start_read``, and
``Suspension.start_read`` above it: see ``docs/architecture.md``):

* ``submit_recv/send/read/write/accept/connect/poll/timeout/nop(..., token)``
  queue one operation; nothing reaches the kernel before the next ``wait``
  (or ``flush``).  ``token`` is any hashable, unique among the operations in
  flight; ``capacity`` of them may be in flight (``PoolFullError`` beyond).
* ``wait(timeout) -> [(token, result, flags)]``: every operation completes
  exactly once; ``result`` is an ``int`` (bytes moved, the new fd, poll
  flags, 0) or the ``OSError`` the kernel returned, real errno and all.
* Buffer lifetime: from ``submit_*`` until its completion has been returned
  by ``wait``, the kernel may read or write the buffer at any moment.  The
  ring keeps a reference (and so a pinned buffer export) until then, but
  the caller must not resize, reuse or read it before.
* ``cancel(token)`` asks for an early end; the operation still completes,
  once: ``OSError(ECANCELED)``, or its real result if it won the race (then
  the bytes *were* received or sent and must be accounted for).  The
  buffer is free only when that completion has arrived.
* ``close()`` cancels whatever is in flight and waits for the kernel to be
  done with every buffer before it unmaps the ring.
* ``forget(fd)`` before closing an fd used with the proactor: a no-op here,
  required by IOCP, whose handles stay associated with a port.
* Readiness: ``submit_poll(fd, events, token)`` is one-shot (on IOCP a
  zero-byte receive: sockets only).  A scheduler that keeps persistent
  registrations uses ``SocketIoPool`` on the same ring (``pool.ring``):
  one ``cycle`` waits for both, and returns early, maybe empty, when an
  operation completes -- its completion is then in ``pool.ring.completions()``.
* Threads: a ``Ring`` belongs to the thread that first waits on it
  (``EEXIST`` elsewhere); a ``Port`` may be waited on from any thread.

What ``benchmarks/bench_uring.py`` measured (2 shared cores, CPython 3.11
and PyPy 3.9, short runs under load) decides which operations go through
the ring.  File reads from the page cache: the ring does 1.4-4x the reads
per second of a thread pool on CPython and 7-14x on PyPy, whose thread
hand-offs are slow -- so on this backend files leave the worker threads
for the ring (``poorio.files``; ``benchmarks/bench_files.py`` measures it
from fibers; a plain blocking ``pread`` of cached data is faster still: the
ring and the threads pay off only where a read can really block).  Socket
receive and send: from Python the ring does 0.3-0.65x the round trips of
epoll readiness plus ``recv``/``send``, with one pair or 64 at once: the
Python work per operation (an SQE packed, a buffer pinned, a CQE sorted)
costs more than the syscalls it saves, which the C socket methods make
cheap.  So sockets should stay on readiness until that changes.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import math
import os
import socket
import time

from ..errors import BackendUnavailableError, ClosedResourceError
from . import _uring
from ._base import DEFAULT_CAPACITY, ERROR, HANGUP, READABLE, WRITABLE, SocketIoPool as Contract
from ._libc import fileno
from ._proactor import ProactorBase
from ._proactor import nanoseconds as _ns
from ._proactor import pin_readable as _readable
from ._proactor import pin_writable as _writable
from ._sockaddr import sockaddr

__all__ = ["available", "unavailable_reason", "Ring", "SocketIoPool", "sockaddr"]

# Poll bits in a POLL_ADD result are poll(2)'s, which are poorio's flags.
_MASK = READABLE | WRITABLE | ERROR | HANGUP
_POLLNVAL = 0x020
_ASYNC_CANCEL_ANY = 1 << 2
_MSG_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0x4000)
_ACCEPT_FLAGS = getattr(socket, "SOCK_CLOEXEC", 0) | getattr(socket, "SOCK_NONBLOCK", 0)
# sqe->poll32_events for each interest, swapped already where the machine is big-endian.
_POLL_FIELD = {events: _uring.poll_mask_field(events) for events in (READABLE, WRITABLE, READABLE | WRITABLE)}

# Buffers of operations a ring could not drain when it closed (only if it is
# closed from a thread that does not own it): kept alive for good, because
# the kernel may still write into them.
_ORPHANED: list = []


def available() -> bool:
    """Whether poorio's kind of ring works here (Linux 6.2+, io_uring allowed, no qemu-user)."""
    return _uring.probe() is None


def unavailable_reason() -> str | None:
    """Why ``available()`` is False (``None`` when it is True)."""
    return _uring.probe()


class Ring(ProactorBase):
    """A proactor on one io_uring: submit operations with a token, wait for their completions.

    Owned by the thread that first waits on it.  See the module essay for
    the contract: one completion per operation, buffers pinned until then.
    """

    backend = "uring"
    noun = "ring"

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        reason = _uring.probe()
        if reason is not None:
            raise BackendUnavailableError(f"io_uring is not usable here: {reason}")
        super().__init__(capacity)
        # CQEs outstanding at once: an operation and its cancel each, and for
        # a pool's ring a poll and its removal per fd.  More would overflow
        # into the kernel's list (NODROP: slower, never lost).
        self._rings = _uring.Rings(min(capacity, 1024), min(4 * capacity, 2 * _uring.MAX_ENTRIES))
        self._ids = itertools.count(1)  # user_data; 0 marks CQEs nobody waits for
        self._ops: dict = {}  # user_data -> (token, opcode, keeper)
        self._cancelling: set = set()  # user_data of operations a cancel was queued for
        self._watch: dict = {}  # user_data -> fd, for the polls of a SocketIoPool on this ring
        self._fired: list = []  # (user_data, fd, res) of those polls, reaped but not yet handed out

    def fileno(self) -> int:
        """The ring's own fd (close-on-exec)."""
        return self._rings.fd

    # -- submitting ------------------------------------------------------------------

    def _submit(self, opcode, fd, addr, length, off, op_flags, token, keeper) -> None:
        self._admit(token)
        ud = next(self._ids)
        self._rings.prep(opcode, fd, addr, length, off, op_flags, ud)
        self._ops[ud] = (token, opcode, keeper)
        self._tokens[token] = ud

    def submit_recv(self, fd, buffer, token, flags: int = 0) -> None:
        """Receive into ``buffer`` (writable); result: bytes received, 0 at end of stream."""
        keeper, addr, size = _writable(buffer)
        self._submit(_uring.OP_RECV, fd if type(fd) is int else fileno(fd), addr, size, 0, flags, token, keeper)

    def submit_send(self, fd, data, token, flags: int = _MSG_NOSIGNAL) -> None:
        """Send from ``data``; result: bytes sent (maybe fewer).  ``MSG_NOSIGNAL``: EPIPE, not SIGPIPE."""
        keeper, addr, size = _readable(data)
        self._submit(_uring.OP_SEND, fd if type(fd) is int else fileno(fd), addr, size, 0, flags, token, keeper)

    def submit_read(self, fd, buffer, offset: int, token) -> None:
        """Read into ``buffer`` at file ``offset`` (-1: the current position, for pipes too)."""
        keeper, addr, size = _writable(buffer)
        self._submit(_uring.OP_READ, fileno(fd), addr, size, offset, 0, token, keeper)

    def submit_write(self, fd, data, offset: int, token) -> None:
        """Write ``data`` at file ``offset`` (-1: the current position); result: bytes written."""
        keeper, addr, size = _readable(data)
        self._submit(_uring.OP_WRITE, fileno(fd), addr, size, offset, 0, token, keeper)

    def submit_accept(self, fd, token) -> None:
        """Accept a connection; result: the new socket's fd, non-blocking and close-on-exec."""
        self._submit(_uring.OP_ACCEPT, fileno(fd), 0, 0, 0, _ACCEPT_FLAGS, token, None)

    def submit_connect(self, fd, address: bytes, token) -> None:
        """Connect to ``address``, a ``sockaddr(family, addr)``; result: 0."""
        keeper = ctypes.create_string_buffer(bytes(address), len(address))
        self._submit(_uring.OP_CONNECT, fileno(fd), ctypes.addressof(keeper), 0, len(address), 0, token, keeper)

    def submit_poll(self, fd, events: int, token) -> None:
        """Wait once for ``events`` (READABLE, WRITABLE); result: the flags that are ready."""
        if not isinstance(events, int) or events & ~(READABLE | WRITABLE) or not events:
            raise ValueError(f"events must combine READABLE and WRITABLE, not {events!r}")
        self._submit(_uring.OP_POLL_ADD, fileno(fd), 0, 0, 0, _uring.poll_mask_field(events), token, None)

    def submit_timeout(self, seconds: float, token) -> None:
        """Complete after ``seconds``; result: 0 (or ``OSError(ECANCELED)`` when cancelled)."""
        ns = _ns(seconds)
        if ns is None:
            raise ValueError("a timeout needs a finite number of seconds")
        keeper = ctypes.create_string_buffer(_uring.TIMESPEC.pack(*divmod(ns, 1_000_000_000)), _uring.TIMESPEC.size)
        self._submit(_uring.OP_TIMEOUT, -1, ctypes.addressof(keeper), 1, 0, 0, token, keeper)

    def submit_nop(self, token) -> None:
        """Complete at once with result 0: the round trip of the ring itself."""
        self._submit(_uring.OP_NOP, -1, 0, 0, 0, 0, token, None)

    def cancel(self, token) -> bool:
        """Ask the kernel to end ``token``'s operation early; False if none is in flight.

        The operation still completes, exactly once (see the module essay);
        its buffer stays pinned until then.
        """
        ud = self._tokens.get(token)
        if ud is None or self._closed:
            return False
        if ud not in self._cancelling:
            self._cancelling.add(ud)
            self._rings.prep(_uring.OP_ASYNC_CANCEL, -1, ud, 0, 0, 0, 0)
        return True

    def forget(self, fd) -> None:
        """Nothing to do here: IOCP needs it before a handle is closed, io_uring keeps no per-fd state."""

    # -- completing --------------------------------------------------------------------

    def _pump(self, min_complete: int, timeout_ns: int | None) -> None:
        """Submit, wait (maybe), and sort every CQE into completions and pool polls."""
        for ud, res, flags in self._rings.enter(min_complete, timeout_ns):
            op = self._ops.pop(ud, None)
            if op is not None:
                self._complete(ud, op, res, flags)
            else:
                fd = self._watch.pop(ud, None)
                if fd is not None:
                    self._fired.append((ud, fd, res))
                # else: a cancel's or a removal's own CQE, or a removed poll's last word

    def _complete(self, ud: int, op: tuple, res: int, flags: int) -> None:
        """Hand out the completion of an operation (already taken out of ``_ops``)."""
        token, opcode, _ = op
        del self._tokens[token]
        self._cancelling.discard(ud)
        if res < 0:
            if opcode == _uring.OP_TIMEOUT and res == -errno.ETIME:
                res = 0  # the timer ran out: that is its success
            else:
                res = OSError(-res, os.strerror(-res))
        elif opcode == _uring.OP_POLL_ADD:
            res = (res & _MASK) | (ERROR if res & _POLLNVAL else 0)
        self._done.append((token, res, flags))

    def flush(self) -> None:
        """Submit what is queued now, without waiting; completions wait for ``wait``."""
        if self._closed:
            raise ClosedResourceError("the ring is closed")
        self._pump(0, None)

    def _collect(self, ns: int | None) -> None:
        try:
            self._pump(0 if ns == 0 else 1, ns)
        except InterruptedError:
            pass  # PEP 475: the caller waits again for what is left

    def _release(self) -> None:
        try:
            if self._rings.enabled and (self._ops or self._watch):
                # Cancel everything, a pool's polls too: their open files are
                # released now, not later by the kernel's ring teardown.
                self._rings.prep(_uring.OP_ASYNC_CANCEL, -1, 0, 0, 0, _ASYNC_CANCEL_ANY, 0)
                self._pump(0, None)
                while self._ops:
                    try:
                        self._pump(1, None)
                    except InterruptedError:
                        pass
        except OSError:  # not the owning thread: the kernel may still use the buffers
            _ORPHANED.extend(keeper for _, _, keeper in self._ops.values() if keeper is not None)
        finally:
            self._ops.clear()
            self._tokens.clear()
            self._done.clear()
            self._watch.clear()
            self._fired.clear()
            self._rings.close()


class SocketIoPool(Contract):
    """A fixed-capacity, level-triggered interest set on an io_uring (one-shot polls, re-armed).

    ``pool.ring`` (also ``pool.proactor``, the contract's name) is its
    ``Ring``: operations submitted there share the pool's wait.  While some are in flight, ``cycle`` also returns (maybe
    with ``[]``) when one completes; take those from ``pool.ring.completions()``.
    """

    backend = "uring"

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        reason = _uring.probe()
        if reason is not None:
            raise BackendUnavailableError(f"io_uring is not usable here: {reason}")
        super().__init__(capacity)
        self.ring = self.proactor = Ring(capacity)
        self._armed: dict = {}  # fd -> user_data of its POLL_ADD; absent while it awaits re-arming
        self._rearm: set = set()  # fds reported by the last cycle, armed again before the next wait

    def fileno(self) -> int:
        """The ring's fd (close-on-exec)."""
        return self.ring.fileno()

    def _arm(self, fd: int, events: int) -> None:
        ring = self.ring
        ud = next(ring._ids)
        ring._rings.prep(_uring.OP_POLL_ADD, fd, 0, 0, 0, _POLL_FIELD[events], ud)
        ring._watch[ud] = fd
        self._armed[fd] = ud

    def _disarm(self, fd: int, now: bool = False) -> None:
        self._rearm.discard(fd)
        ud = self._armed.pop(fd, None)
        if ud is not None and self.ring._watch.pop(ud, None) is not None:
            # Still armed (not reaped yet): whatever it reports is stale from now on.
            ring = self.ring
            ring._rings.prep(_uring.OP_POLL_REMOVE, -1, ud, 0, 0, 0, 0, flags=_uring.IOSQE_CQE_SKIP_SUCCESS)
            if now and ring._rings.enabled:
                # An armed poll holds the open file: a listener closed right
                # after remove() would go on accepting until the next cycle.
                # So the removal reaches the kernel now, as epoll_ctl would.
                try:
                    ring._pump(0, None)
                except InterruptedError:  # pragma: no cover - no wait, no EINTR
                    pass

    def _add(self, fd: int, events: int) -> None:
        os.get_inheritable(fd)  # EBADF now, as epoll_ctl would say: the real errno
        self._arm(fd, events)

    def _modify(self, fd: int, events: int) -> None:
        self._disarm(fd)
        self._arm(fd, events)

    def _remove(self, fd: int) -> None:
        self._disarm(fd, now=True)

    def _wait(self, ms: int) -> list:
        ring = self.ring
        interest = self._events
        rings, watch, ops, armed, rearm, ids = ring._rings, ring._watch, ring._ops, self._armed, self._rearm, ring._ids
        deadline = None if ms < 0 else time.monotonic() + ms / 1000.0
        ns = None if ms < 0 else ms * 1_000_000
        while True:
            # Every fd that fired since it was armed is armed again before
            # each wait -- those the last cycle reported, and those that fired
            # with nothing asked for (a bare POLLRDHUP, say) just now.  This is
            # _arm, inline: it runs for every ready fd on every cycle.
            for fd in rearm:
                if (rings.sq_tail - rings.sq_head) & 0xFFFFFFFF >= rings.sq_entries:
                    rings.flush()
                ud = next(ids)
                _uring.SQE.pack_into(rings.sqes, (rings.sq_tail & rings.sq_mask) * 64, _uring.OP_POLL_ADD, 0, 0,
                                     fd, 0, 0, 0, _POLL_FIELD[interest[fd]], ud, 0, 0, 0, 0, 0)
                rings.sq_tail += 1
                watch[ud] = fd
                armed[fd] = ud
            rearm.clear()
            # Ring._pump, inline, and the polls sorted as they come.  Polls a
            # removal's flush or the ring's own wait() took are ready already,
            # and so are completions it took and nobody has collected: then
            # the kernel is asked without waiting.
            cqes = rings.enter(1 if ms and not ring._fired and not ring._done else 0, ns)
            ready: list = []
            if ring._fired:  # polls that the ring's own wait() reaped meanwhile: sorted below with the rest
                fired, ring._fired = ring._fired, []
                for ud, fd, _ in fired:
                    if armed.get(fd) == ud:  # not removed or modified since
                        watch[ud] = fd
                cqes = [(ud, res, 0) for ud, _, res in fired] + cqes
            for ud, res, cflags in cqes:
                fd = watch.pop(ud, None)
                if fd is None:
                    op = ops.pop(ud, None)
                    if op is not None:
                        ring._complete(ud, op, res, cflags)
                    continue  # a removal's own CQE, or a removed poll's last word
                del armed[fd]
                rearm.add(fd)
                if res < 0:  # the fd was closed before its poll reached the kernel
                    flags = ERROR
                else:
                    flags = (res & _MASK | (ERROR if res & _POLLNVAL else 0)) & (interest[fd] | ERROR | HANGUP)
                if flags:
                    ready.append((fd, flags))
            if ready or not ms or ring._done:
                return ready
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                ns = math.ceil(left * 1e9)

    def _close(self) -> None:
        self._armed.clear()
        self._rearm.clear()
        self.ring.close()
