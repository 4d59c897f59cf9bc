"""The raw io_uring: three syscalls, two mapped rings, and the records in them.

This module knows the ABI and nothing of tokens, buffers or fds' meaning:
``Rings`` sets up a ring, maps it, writes submission queue entries (SQEs)
into it, enters the kernel and reads completion queue entries (CQEs) back.
``uring.py`` builds the proactor and the readiness pool on it, and its
opening essay says why plain loads and stores from Python are enough here.

Layouts (``include/uapi/linux/io_uring.h``; the same on every architecture,
since every field has a fixed width and is naturally aligned):

* ``struct io_uring_sqe``, 64 bytes: ``u8 opcode; u8 flags; u16 ioprio;
  s32 fd; u64 off (addr2); u64 addr; u32 len; u32 op_flags (rw_flags,
  poll32_events, msg_flags, timeout_flags, accept_flags, cancel_flags...);
  u64 user_data; u16 buf_index; u16 personality; s32 splice_fd_in
  (file_index); u64 addr3; u64 __pad2``.
* ``struct io_uring_cqe``, 16 bytes: ``u64 user_data; s32 res; u32 flags``.
* ``struct io_uring_params``, 120 bytes: ten ``u32`` (sq_entries,
  cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd,
  resv[3]), then ``io_sqring_offsets`` and ``io_cqring_offsets``, eight
  ``u32`` and a ``u64 user_addr`` each.
* ``struct io_uring_getevents_arg``, 24 bytes: ``u64 sigmask; u32
  sigmask_sz; u32 min_wait_usec (pad before 6.12); u64 ts`` -- ``ts``
  points at a ``__kernel_timespec``, two ``s64`` even on 32-bit ABIs.

The rings are mapped with libc's ``mmap`` through ctypes, not with the
``mmap`` module, which keeps a ``dup`` of the ring fd per mapping (three
fds more per ring, until Python 3.13's ``trackfd=False``).

Byte order is the machine's ("=" formats), with one trap: on big-endian
machines the kernel swaps the 16-bit halves of ``poll32_events`` (it was a
``u16`` once, and old binaries must keep working), so ``poll_mask_field``
swaps them first, as liburing does.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys

from ._libc import MULTIARCH, libc

__all__ = [
    "Rings",
    "SQE",
    "CQE",
    "PARAMS",
    "syscall_numbers",
    "poll_mask_field",
    "kernel_version",
    "probe",
]

# -- the ABI ------------------------------------------------------------------

SQE = struct.Struct("=BBHiQQIIQHHiQQ")
CQE = struct.Struct("=QiI")
PARAMS = struct.Struct("=10I8IQ8IQ")  # io_uring_params: 10 u32, sq_off, cq_off
GETEVENTS_ARG = struct.Struct("=QIIQ")
TIMESPEC = struct.Struct("=qq")  # __kernel_timespec
_U32 = struct.Struct("=I")

# Field offsets inside an SQE, for the ABI tests and the curious.
SQE_OFFSETS = dict(
    opcode=0, flags=1, ioprio=2, fd=4, off=8, addr=16, len=24, op_flags=28,
    user_data=32, buf_index=40, personality=42, file_index=44, addr3=48,
)
CQE_OFFSETS = dict(user_data=0, res=8, flags=12)

# enum io_uring_op (the numbering is ABI: new opcodes are only ever appended)
OP_NOP = 0
OP_POLL_ADD = 6
OP_POLL_REMOVE = 7
OP_TIMEOUT = 11
OP_ACCEPT = 13
OP_ASYNC_CANCEL = 14
OP_CONNECT = 16
OP_READ = 22
OP_WRITE = 23
OP_SEND = 26
OP_RECV = 27

SETUP_CQSIZE = 1 << 3
SETUP_CLAMP = 1 << 4
SETUP_R_DISABLED = 1 << 6
SETUP_SUBMIT_ALL = 1 << 7
SETUP_SINGLE_ISSUER = 1 << 12
SETUP_DEFER_TASKRUN = 1 << 13

FEAT_SINGLE_MMAP = 1 << 0
FEAT_NODROP = 1 << 1
FEAT_SUBMIT_STABLE = 1 << 2
FEAT_RW_CUR_POS = 1 << 3
FEAT_EXT_ARG = 1 << 8
# What poorio relies on: no CQE is ever dropped, the SQE and what it points
# at are consumed by the time submission returns, -1 means "current file
# position", and a wait can carry its own timeout.
FEATURES_NEEDED = FEAT_NODROP | FEAT_SUBMIT_STABLE | FEAT_RW_CUR_POS | FEAT_EXT_ARG

ENTER_GETEVENTS = 1 << 0
ENTER_EXT_ARG = 1 << 3
REGISTER_ENABLE_RINGS = 12
IOSQE_CQE_SKIP_SUCCESS = 1 << 6

OFF_SQ_RING = 0
OFF_CQ_RING = 0x8000000
OFF_SQES = 0x10000000

# The flags every poorio ring is made with (see the essay in uring.py): one
# issuing thread, completions posted only in that thread's own io_uring_enter,
# every SQE of a batch submitted even if one fails, and the ring disabled
# until the thread that will own it enables it at its first wait.
SETUP_FLAGS = SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN | SETUP_SUBMIT_ALL | SETUP_R_DISABLED | SETUP_CQSIZE | SETUP_CLAMP

# Linux 6.2 is the first whose DEFER_TASKRUN rings post *every* CQE from the
# submitter task ("io_uring: complete all requests in task context").
MIN_KERNEL = (6, 2)

MAX_ENTRIES = 32768  # IORING_MAX_ENTRIES


def syscall_numbers(multiarch: str) -> tuple:
    """(io_uring_setup, io_uring_enter, io_uring_register) for a target triplet.

    Since Linux 5.1 new syscalls share one number on every architecture
    (``include/uapi/asm-generic/unistd.h`` and each ``syscall.tbl``): 425,
    426, 427 -- offset for the ABIs that number from a base: alpha (+110),
    MIPS o32/n64/n32 (4000/5000/6000 + n), and x32 (``__X32_SYSCALL_BIT``).
    """
    arch, _, rest = multiarch.partition("-")
    base = 425
    if arch == "alpha":
        base = 535
    elif arch.startswith("mips"):
        if rest.endswith("abin32"):
            base = 6425
        elif arch.startswith("mips64"):
            base = 5425
        else:
            base = 4425
    elif arch == "x86_64" and rest.endswith("gnux32"):
        base = 425 | 0x40000000
    return base, base + 1, base + 2


def poll_mask_field(mask: int, byteorder: str = sys.byteorder) -> int:
    """The value to store in ``sqe->poll32_events`` for a poll(2) mask.

    The kernel reads the field and, on big-endian machines, swaps its 16-bit
    halves (``swahw32``), so the old 16-bit ``poll_events`` field keeps its
    meaning; liburing pre-swaps for the same reason.
    """
    if byteorder == "big":
        return ((mask << 16) | (mask >> 16)) & 0xFFFFFFFF
    return mask


def kernel_version(release: str | None = None) -> tuple:
    """(major, minor) of the running kernel, from ``uname -r``; (0, 0) if unreadable."""
    if release is None:
        release = os.uname().release
    numbers = []
    for part in release.split(".")[:2]:
        digits = ""
        for char in part:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            return (0, 0)
        numbers.append(int(digits))
    return tuple(numbers) if len(numbers) == 2 else (0, 0)


# -- the syscalls ---------------------------------------------------------------

_SETUP, _ENTER, _REGISTER = syscall_numbers(MULTIARCH)
_syscall = None
_mmap = _munmap = None
if sys.platform.startswith("linux") and libc is not None:
    _syscall = libc.syscall
    _syscall.restype = ctypes.c_long
    # syscall(2) is variadic; every Linux ABI passes variadic integer and
    # pointer arguments exactly as fixed ones, so fixed c_long arguments do.
    _syscall.argtypes = (ctypes.c_long,) * 7
    _mmap = getattr(libc, "mmap64", None) or libc.mmap  # off64_t where libc has it
    _mmap.restype = ctypes.c_void_p
    _mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_longlong if hasattr(libc, "mmap64") else ctypes.c_long)
    _munmap = libc.munmap
    _munmap.restype = ctypes.c_int
    _munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)

PROT_READ = 1
PROT_WRITE = 2
MAP_SHARED = 1
_MAP_FAILED = ctypes.c_void_p(-1).value


def _errno_error() -> OSError:
    err = ctypes.get_errno()
    return OSError(err, os.strerror(err))


_probed = None


def probe() -> str | None:
    """None when poorio's kind of ring works here, else why not (the answer is cached)."""
    global _probed
    if _probed is None:
        _probed = _probe() or ""
    return _probed or None


def _probe() -> str | None:
    if _syscall is None:
        return "io_uring is Linux's"
    version = kernel_version()
    if version < MIN_KERNEL:
        return (f"Linux {version[0]}.{version[1]} is older than {MIN_KERNEL[0]}.{MIN_KERNEL[1]}, the first "
                "whose DEFER_TASKRUN rings post every completion from the owning thread")
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as knob:
            if knob.read().strip() == "2":
                return "io_uring is disabled by the administrator (kernel.io_uring_disabled = 2)"
    except OSError:
        pass  # the knob appeared in 6.6; older kernels have no such switch
    try:
        rings = Rings(4, 8)
    except OSError as exc:
        if exc.errno == errno.ENOSYS:
            return "io_uring_setup is not implemented here (ENOSYS: qemu-user, or a seccomp filter)"
        if exc.errno == errno.EPERM:
            return "io_uring_setup is not permitted here (EPERM: io_uring_disabled, io_uring_group or seccomp)"
        return f"io_uring_setup failed: {exc}"
    try:
        missing = FEATURES_NEEDED & ~rings.features
        if missing:
            return f"this kernel's io_uring lacks features 0x{missing:x}"
    finally:
        rings.close()
    return None


# -- a mapped ring ----------------------------------------------------------------


class Rings:
    """One io_uring instance: its fd, its mapped SQ ring, SQE array and CQ ring.

    ``prep()`` writes an SQE into the next free slot; nothing reaches the
    kernel until ``enter()``, which submits every SQE written since, may
    wait, and returns every CQE the kernel has posted.  All of it must
    run on one thread: the one that first calls ``enter()`` owns the ring.
    """

    def __init__(self, sq_entries: int, cq_entries: int) -> None:
        params = bytearray(PARAMS.size)
        PARAMS.pack_into(params, 0, sq_entries, cq_entries, SETUP_FLAGS, *([0] * 25))
        buf = (ctypes.c_char * PARAMS.size).from_buffer(params)
        fd = _syscall(_SETUP, sq_entries, ctypes.addressof(buf), 0, 0, 0, 0)
        del buf
        if fd < 0:
            raise _errno_error()
        self.fd = fd
        self._maps: list = []
        try:
            self._map(PARAMS.unpack_from(params))
        except BaseException:
            self.close()
            raise

    def _map(self, p: tuple) -> None:
        self.sq_entries, self.cq_entries, _, _, _, self.features = p[:6]
        sq_head, sq_tail, sq_mask, _, _, _, sq_array, _, _ = p[10:19]
        cq_head, cq_tail, cq_mask, _, _, cqes, _, _, _ = p[19:28]
        sq_size = sq_array + self.sq_entries * 4
        cq_size = cqes + self.cq_entries * CQE.size
        if self.features & FEAT_SINGLE_MMAP:
            sq_size = cq_size = max(sq_size, cq_size)
            self.sq = self.cq = self._mmap(sq_size, OFF_SQ_RING)
        else:
            self.sq = self._mmap(sq_size, OFF_SQ_RING)
            self.cq = self._mmap(cq_size, OFF_CQ_RING)
        self.sqes = self._mmap(self.sq_entries * SQE.size, OFF_SQES)
        self._sq_head_off, self._sq_tail_off = sq_head, sq_tail
        self._cq_head_off, self._cq_tail_off, self._cqes_off = cq_head, cq_tail, cqes
        self.sq_mask = _U32.unpack_from(self.sq, sq_mask)[0]
        self.cq_mask = _U32.unpack_from(self.cq, cq_mask)[0]
        # The SQ array maps ring slots to SQE indexes; poorio uses slot i for
        # SQE i, so it is written once, here, and never again.
        struct.pack_into(f"={self.sq_entries}I", self.sq, sq_array, *range(self.sq_entries))
        self.sq_tail = _U32.unpack_from(self.sq, sq_tail)[0]  # ours: SQEs written
        self.sq_head = _U32.unpack_from(self.sq, sq_head)[0]  # the kernel's, as last read
        self.cq_head = _U32.unpack_from(self.cq, cq_head)[0]  # ours: CQEs consumed
        self.early: list = []  # CQEs taken by a flush, for the next enter to return
        self.enabled = False
        # io_uring_getevents_arg and its timespec, made once; their raw
        # addresses are what enter() passes (cheap on PyPy too).
        self._ts = ctypes.create_string_buffer(TIMESPEC.size)
        self._arg = ctypes.create_string_buffer(GETEVENTS_ARG.size)
        GETEVENTS_ARG.pack_into(self._arg, 0, 0, 0, 0, ctypes.addressof(self._ts))
        self._arg_address = ctypes.addressof(self._arg)

    def _mmap(self, size: int, offset: int) -> memoryview:
        address = _mmap(None, size, PROT_READ | PROT_WRITE, MAP_SHARED, self.fd, offset)
        if address in (None, _MAP_FAILED):
            raise _errno_error()
        view = memoryview((ctypes.c_ubyte * size).from_address(address)).cast("B")
        self._maps.append((address, size, view))
        return view

    # -- submission and completion ----------------------------------------------------

    def free_slots(self) -> int:
        return self.sq_entries - ((self.sq_tail - self.sq_head) & 0xFFFFFFFF)

    def prep(self, opcode: int, fd: int, addr: int, length: int, off: int, op_flags: int,
             user_data: int, flags: int = 0, ioprio: int = 0) -> None:
        """Write one SQE into the next slot (submitted at the next ``enter``)."""
        if (self.sq_tail - self.sq_head) & 0xFFFFFFFF >= self.sq_entries:
            self.flush()  # push the full queue to the kernel first
        SQE.pack_into(self.sqes, (self.sq_tail & self.sq_mask) * SQE.size, opcode, flags, ioprio, fd,
                      off & 0xFFFFFFFFFFFFFFFF, addr, length, op_flags, user_data, 0, 0, 0, 0, 0)
        self.sq_tail += 1

    def flush(self) -> None:
        """Submit the queued SQEs without waiting; what completes is kept for the next ``enter``."""
        taken = self.enter(0, None)  # first: enter() swaps self.early for a new list
        self.early.extend(taken)

    def enter(self, min_complete: int, timeout_ns: int | None) -> list:
        """Submit every queued SQE, wait for ``min_complete`` CQEs or ``timeout_ns``, take every CQE.

        Returns the CQEs posted since the last ``enter``, as ``(user_data,
        res, flags)``, oldest first -- ``[]`` when the time ran out (``ETIME``).
        Raises ``InterruptedError`` for a signal (the CQEs stay in the ring
        for the next call), ``OSError`` for anything else the kernel refused
        -- ``EEXIST`` if this is not the owning thread.
        """
        if not self.enabled:
            if _syscall(_REGISTER, self.fd, REGISTER_ENABLE_RINGS, 0, 0, 0, 0) < 0:
                raise _errno_error()
            self.enabled = True
        if self.early:
            min_complete = 0  # some are here already: do not wait for more
        to_submit = (self.sq_tail - self.sq_head) & 0xFFFFFFFF
        if to_submit:
            _U32.pack_into(self.sq, self._sq_tail_off, self.sq_tail & 0xFFFFFFFF)
        flags = ENTER_GETEVENTS
        arg = size = 0
        if timeout_ns is not None and min_complete:
            flags |= ENTER_EXT_ARG
            TIMESPEC.pack_into(self._ts, 0, *divmod(timeout_ns, 1_000_000_000))
            arg, size = self._arg_address, GETEVENTS_ARG.size
        result = _syscall(_ENTER, self.fd, to_submit, min_complete, flags, arg, size)
        # Written by the kernel during this very call, in this very thread.
        self.sq_head = _U32.unpack_from(self.sq, self._sq_head_off)[0]
        if result < 0:
            err = ctypes.get_errno()
            if err == errno.EINTR:
                raise InterruptedError(err, os.strerror(err))
            if err != errno.ETIME:
                raise OSError(err, os.strerror(err))
        # Take every CQE there is (the tail, too, was written in this thread's call).
        out, self.early = self.early, []
        tail = _U32.unpack_from(self.cq, self._cq_tail_off)[0]
        head = self.cq_head
        count = (tail - head) & 0xFFFFFFFF
        if count:
            start = head & self.cq_mask
            base = self._cqes_off
            if start + count <= self.cq_entries:
                out += CQE.iter_unpack(self.cq[base + start * 16: base + (start + count) * 16])
            else:  # the run wraps around the end of the array
                out += CQE.iter_unpack(self.cq[base + start * 16: base + self.cq_entries * 16])
                out += CQE.iter_unpack(self.cq[base: base + (start + count - self.cq_entries) * 16])
            self.cq_head = tail
            _U32.pack_into(self.cq, self._cq_head_off, tail)
        return out

    def close(self) -> None:
        """Unmap the rings and close the fd; idempotent.  In-flight operations are cancelled by the kernel."""
        maps, self._maps = getattr(self, "_maps", []), []
        self.sq = self.cq = self.sqes = None
        for address, size, view in maps:
            view.release()
            _munmap(address, size)
        if getattr(self, "fd", -1) >= 0:
            os.close(self.fd)
            self.fd = -1
