"""The structs of the backends this machine may not run -- kqueue, WSAPoll, io_uring, IOCP -- checked on every ABI.

The layouts are built by pure functions of the target (``kevent_layout``,
``wsapollfd_layout``), so every system's numbers are checked here, on any
host, against numbers written down from the headers:

* macOS ``<sys/event.h>`` (xnu ``bsd/sys/event.h``): ``uintptr_t ident;
  int16_t filter; uint16_t flags; uint32_t fflags; intptr_t data; void
  *udata;`` -- 32 bytes on LP64.  DragonFly's is the same.
* FreeBSD 12+ ``sys/sys/event.h``: ``__uintptr_t ident; short filter;
  unsigned short flags; unsigned int fflags; __int64_t data; void *udata;
  __uint64_t ext[4];`` -- 64 bytes on LP64; on i386 (int64 4-aligned) 56,
  matching ``struct kevent32`` of the freebsd32 compat code without its
  ``pad0``/``pad1``; on armv7/powerpc 64, with them.
* OpenBSD ``sys/sys/event.h``: as FreeBSD without ``ext``: 32 bytes on
  LP64, 24 on i386, 32 on armv7.
* NetBSD ``sys/sys/event.h``: ``uintptr_t ident; uint32_t filter; uint32_t
  flags; uint32_t fflags; int64_t data; void *udata; uint64_t ext[4];``
  (11.0, ``__kevent100``) -- 72 bytes on LP64; the 10.x layout without
  ``ext`` survives as ``struct kevent100`` in ``sys/compat/sys/event.h``
  (``__kevent50``) -- 40 bytes on LP64.
* Windows ``winsock2.h``: ``typedef struct pollfd { SOCKET fd; SHORT events;
  SHORT revents; } WSAPOLLFD;`` with ``SOCKET`` a ``UINT_PTR`` -- 8 bytes on
  Win32, 16 on Win64.
* 64-bit integers inside structs are 4-aligned by the i386 System V ABI and
  8-aligned by every LP64 ABI and by 32-bit ARM (AAPCS), MIPS and PowerPC.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import sys

import pytest

import poorio.platform as platform
from poorio.errors import BackendUnavailableError
from poorio.platform import ERROR, HANGUP, READABLE, WRITABLE, _libc, kqueue, wsapoll

LP64 = (8, 8)  # pointer size, int64 alignment
I386 = (4, 4)
ARM32 = (4, 8)

# system, ABI -> (size, {field: offset}, sizeof(struct timespec)), from the headers above.
KEVENT = {
    ("darwin", LP64): (32, dict(ident=0, filter=8, flags=10, fflags=12, data=16, udata=24), 16),
    ("darwin", I386): (20, dict(ident=0, filter=4, flags=6, fflags=8, data=12, udata=16), 8),
    ("freebsd", LP64): (64, dict(ident=0, filter=8, flags=10, fflags=12, data=16, udata=24, ext=32), 16),
    ("freebsd", I386): (56, dict(ident=0, filter=4, flags=6, fflags=8, data=12, udata=20, ext=24), 8),
    ("freebsd", ARM32): (64, dict(ident=0, filter=4, flags=6, fflags=8, data=16, udata=24, ext=32), 16),
    ("openbsd", LP64): (32, dict(ident=0, filter=8, flags=10, fflags=12, data=16, udata=24), 16),
    ("openbsd", I386): (24, dict(ident=0, filter=4, flags=6, fflags=8, data=12, udata=20), 12),
    ("openbsd", ARM32): (32, dict(ident=0, filter=4, flags=6, fflags=8, data=16, udata=24), 16),
    ("netbsd", LP64): (72, dict(ident=0, filter=8, flags=12, fflags=16, data=24, udata=32, ext=40), 16),
    ("netbsd", I386): (60, dict(ident=0, filter=4, flags=8, fflags=12, data=16, udata=24, ext=28), 12),
    ("netbsd", ARM32): (64, dict(ident=0, filter=4, flags=8, fflags=12, data=16, udata=24, ext=32), 16),
    ("netbsd10", LP64): (40, dict(ident=0, filter=8, flags=12, fflags=16, data=24, udata=32), 16),
    ("netbsd10", I386): (28, dict(ident=0, filter=4, flags=8, fflags=12, data=16, udata=24), 12),
    ("netbsd10", ARM32): (32, dict(ident=0, filter=4, flags=8, fflags=12, data=16, udata=24), 16),
}
ABI_NAMES = {LP64: "lp64", I386: "i386", ARM32: "arm32"}
CASES = pytest.mark.parametrize(
    "system, abi", list(KEVENT), ids=[f"{system}-{ABI_NAMES[abi]}" for system, abi in KEVENT]
)


def layout(system, abi):
    return kqueue.kevent_layout(system, *abi)


# -- struct kevent --------------------------------------------------------------


@CASES
def test_kevent_size_and_offsets(system, abi):
    size, offsets, _ = KEVENT[system, abi]
    got = layout(system, abi)
    assert got.size == size == struct.calcsize(got.format)
    assert got.offsets == offsets


@CASES
def test_kevent_ctypes_type_matches(system, abi):
    size, offsets, _ = KEVENT[system, abi]
    ctype = layout(system, abi).ctype
    assert ctypes.sizeof(ctype) == size
    assert {name: getattr(ctype, name).offset for name in offsets} == offsets
    # Every type that sets _pack_ also says which layout it means (Python 3.14+ insists).
    assert ctype._pack_ == 1 and ctype._layout_ == "ms"


@CASES
def test_kevent_record_round_trips_through_format_ctypes_and_decode(system, abi):
    got = layout(system, abi)
    filt = kqueue.filters(system)["EVFILT_WRITE"]
    flags = kqueue.EV_ADD | kqueue.EV_RECEIPT | kqueue.EV_EOF
    values = [7, filt, flags, 0x11, -5, 0x1234]
    values += [0] * (len(struct.unpack(got.format, bytes(got.size))) - len(values))
    raw = struct.pack(got.format, *values)
    record = got.ctype.from_buffer_copy(raw)
    assert (record.ident, record.filter, record.flags, record.fflags, record.data, record.udata) == (
        7, filt, flags, 0x11, -5, 0x1234,
    )
    assert struct.unpack(got.decode, raw) == (7, filt, flags, 0x11, -5)


@CASES
def test_timespec_size(system, abi):
    assert struct.calcsize(layout(system, abi).timespec) == KEVENT[system, abi][2]


def test_freebsd_i386_keeps_a_32_bit_time_t():
    # sys/x86/include/_types.h: __time_t is __int32_t on i386 alone.
    assert struct.calcsize(layout("freebsd", I386).timespec[:2]) == 4
    assert struct.calcsize(layout("freebsd", ARM32).timespec[:2]) == 8


@pytest.mark.parametrize(
    "system, symbol, count",
    [
        ("darwin", "kevent", ctypes.c_int),
        ("freebsd", "kevent", ctypes.c_int),  # resolves to the default version, kevent@@FBSD_1.5
        ("openbsd", "kevent", ctypes.c_int),
        ("netbsd", "__kevent100", ctypes.c_size_t),
        ("netbsd10", "__kevent50", ctypes.c_size_t),
    ],
)
def test_entry_point_and_count_type(system, symbol, count):
    got = layout(system, LP64)
    assert (got.symbol, got.count) == (symbol, count)


@pytest.mark.parametrize(
    "system, numbers",
    [
        ("darwin", (-1, -2, -6, -7)),
        ("freebsd", (-1, -2, -6, -7)),
        ("openbsd", (-1, -2, -6, -7)),
        ("netbsd", (0, 1, 5, 6)),  # NetBSD counts its filters up from 0
        ("netbsd10", (0, 1, 5, 6)),
    ],
)
def test_filter_numbers(system, numbers):
    got = kqueue.filters(system)
    assert (got["EVFILT_READ"], got["EVFILT_WRITE"], got["EVFILT_SIGNAL"], got["EVFILT_TIMER"]) == numbers


def test_unknown_systems_and_abis_are_refused():
    with pytest.raises(ValueError):
        kqueue.kevent_layout("linux", 8, 8)
    with pytest.raises(ValueError):
        kqueue.kevent_layout("freebsd", 2, 8)


@pytest.mark.parametrize(
    "platform_name, system",
    [
        ("darwin", "darwin"),
        ("dragonfly6", "darwin"),
        ("freebsd14", "freebsd"),
        ("openbsd7", "openbsd"),
        ("linux", None),
        ("win32", None),
    ],
)
def test_the_system_is_chosen_by_sys_platform(monkeypatch, platform_name, system):
    monkeypatch.setattr(sys, "platform", platform_name)
    assert kqueue._system() == system


def test_netbsd_layout_follows_the_entry_point_libc_has(monkeypatch):
    monkeypatch.setattr(sys, "platform", "netbsd10")
    expected = "netbsd" if hasattr(_libc.libc, "__kevent100") else "netbsd10"
    assert kqueue._system() == expected


def test_this_interpreter_aligns_int64_as_its_abi_says():
    # The third argument kevent_layout gets on a real BSD.
    i386 = _libc.MULTIARCH.split("-", 1)[0] in ("i386", "i486", "i586", "i686")
    expected = 4 if i386 else 8
    assert ctypes.alignment(ctypes.c_int64) == expected


# -- WSAPOLLFD --------------------------------------------------------------------


@pytest.mark.parametrize(
    "pointer_size, size, offsets", [(4, 8, (0, 4, 6)), (8, 16, (0, 8, 10))], ids=["win32", "win64"]
)
def test_wsapollfd(pointer_size, size, offsets):
    fmt, ctype, revents = wsapoll.wsapollfd_layout(pointer_size)
    assert struct.calcsize(fmt) == ctypes.sizeof(ctype) == size
    assert (ctype.fd.offset, ctype.events.offset, ctype.revents.offset) == offsets
    assert revents == offsets[2]
    assert ctype.fd.size == pointer_size  # SOCKET is UINT_PTR
    # A freed slot holds -1, which must read back as INVALID_SOCKET (~0).
    record = ctype.from_buffer_copy(struct.pack(fmt, -1, 0, 0))
    assert record.fd == 2 ** (8 * pointer_size) - 1


def test_wsapollfd_refuses_other_pointer_sizes():
    with pytest.raises(ValueError):
        wsapoll.wsapollfd_layout(2)


def test_windows_flag_values_and_translation():
    # winsock2.h; they are not POSIX's.
    assert (wsapoll.POLLRDNORM, wsapoll.POLLWRNORM, wsapoll.POLLERR, wsapoll.POLLHUP, wsapoll.POLLNVAL) == (
        0x100, 0x10, 0x1, 0x2, 0x4,
    )
    pool = wsapoll.SocketIoPool
    asked = set(pool._to_native.values())
    assert not any(value & wsapoll.POLLPRI for value in asked)  # WSAPoll rejects it
    assert asked == {0x100, 0x10, 0x110}
    table, mask = pool._from_native, len(pool._from_native) - 1
    assert table[(wsapoll.POLLRDNORM | wsapoll.POLLHUP) & mask] == READABLE | HANGUP
    assert table[(wsapoll.POLLWRNORM | wsapoll.POLLERR) & mask] == WRITABLE | ERROR
    assert table[wsapoll.POLLNVAL & mask] == ERROR


# -- where the backends cannot run ---------------------------------------------------

not_kqueue_os = pytest.mark.skipif(
    sys.platform == "darwin" or "bsd" in sys.platform or sys.platform.startswith("dragonfly"),
    reason="kqueue is this system's own mechanism",
)
not_windows = pytest.mark.skipif(sys.platform == "win32", reason="WSAPoll is this system's own mechanism")


@not_kqueue_os
def test_kqueue_reports_unavailable_here():
    assert kqueue.available() is False
    assert "kqueue" not in platform.backends()
    assert "kqueue" in platform.known_backends()
    with pytest.raises(BackendUnavailableError):
        platform.backend_module("kqueue")
    with pytest.raises(BackendUnavailableError):
        kqueue.SocketIoPool(4)


@not_windows
def test_wsapoll_reports_unavailable_here():
    assert wsapoll.available() is False
    assert "wsapoll" not in platform.backends()
    assert "wsapoll" in platform.known_backends()
    with pytest.raises(BackendUnavailableError):
        platform.backend_module("wsapoll")
    with pytest.raises(BackendUnavailableError):
        wsapoll.SocketIoPool(4)


# -- io_uring: the records every Linux ABI shares ------------------------------------
#
# include/uapi/linux/io_uring.h: every field has a fixed width and sits at
# its natural alignment, so one layout serves i386, x86-64, arm64 and s390x
# alike; only byte order and the syscall numbers vary.

from poorio.platform import _uring  # noqa: E402

SQE_LAYOUT = dict(
    opcode=0, flags=1, ioprio=2, fd=4, off=8, addr=16, len=24, op_flags=28,
    user_data=32, buf_index=40, personality=42, file_index=44, addr3=48,
)


def test_uring_record_sizes():
    assert _uring.SQE.size == 64
    assert _uring.CQE.size == 16
    assert _uring.PARAMS.size == 120  # 40 bytes of u32s, then two 40-byte offset blocks
    assert _uring.GETEVENTS_ARG.size == 24
    assert _uring.TIMESPEC.size == 16  # __kernel_timespec: two s64 even on 32-bit ABIs


def test_uring_sqe_field_offsets():
    assert _uring.SQE_OFFSETS == SQE_LAYOUT
    # Fill each field with a distinct value and find it at its documented offset.
    values = [0x11, 0x22, 0x3344, -5, 0x0102030405060708, 0x1112131415161718, 0x21222324, 0x31323334,
              0x4142434445464748, 0x5152, 0x6162, -7, 0x7172737475767778, 0]
    raw = _uring.SQE.pack(*values)
    native = "<" if sys.byteorder == "little" else ">"
    singles = dict(opcode="B", flags="B", ioprio="H", fd="i", off="Q", addr="Q", len="I", op_flags="I",
                   user_data="Q", buf_index="H", personality="H", file_index="i", addr3="Q")
    for (name, offset), value in zip(SQE_LAYOUT.items(), values):
        assert struct.unpack_from(native + singles[name], raw, offset)[0] == value, name


def test_uring_cqe_layout():
    raw = struct.pack("=Q", 0xDEADBEEF01) + struct.pack("=i", -11) + struct.pack("=I", 3)
    assert _uring.CQE.unpack(raw) == (0xDEADBEEF01, -11, 3)
    assert _uring.CQE_OFFSETS == dict(user_data=0, res=8, flags=12)


@pytest.mark.parametrize(
    "multiarch, numbers",
    [
        ("x86_64-linux-gnu", (425, 426, 427)),
        ("i386-linux-gnu", (425, 426, 427)),
        ("aarch64-linux-gnu", (425, 426, 427)),
        ("arm-linux-gnueabihf", (425, 426, 427)),
        ("s390x-linux-gnu", (425, 426, 427)),
        ("powerpc64le-linux-gnu", (425, 426, 427)),
        ("riscv64-linux-gnu", (425, 426, 427)),
        ("x86_64-linux-gnux32", (0x40000000 | 425, 0x40000000 | 426, 0x40000000 | 427)),
        ("alpha-linux-gnu", (535, 536, 537)),
        ("mipsel-linux-gnu", (4425, 4426, 4427)),
        ("mips64el-linux-gnuabi64", (5425, 5426, 5427)),
        ("mips64el-linux-gnuabin32", (6425, 6426, 6427)),
    ],
)
def test_uring_syscall_numbers(multiarch, numbers):
    assert _uring.syscall_numbers(multiarch) == numbers


def test_uring_poll_mask_is_halfword_swapped_on_big_endian():
    # The kernel applies swahw32() to poll32_events on big-endian machines.
    assert _uring.poll_mask_field(0x0001, "little") == 0x0001
    assert _uring.poll_mask_field(0x0001, "big") == 0x00010000
    assert _uring.poll_mask_field(0x2005, "big") == 0x20050000
    assert _uring.poll_mask_field(_uring.poll_mask_field(0x12345678, "big"), "big") == 0x12345678


@pytest.mark.parametrize(
    "release, version",
    [("6.18.44-fc-v1272", (6, 18)), ("6.1.0-28-amd64", (6, 1)), ("5.15.0", (5, 15)), ("6.2", (6, 2)), ("garbage", (0, 0))],
)
def test_uring_kernel_version(release, version):
    assert _uring.kernel_version(release) == version


def test_uring_opcodes_and_flags_are_the_headers():
    # enum io_uring_op and the flag values, from include/uapi/linux/io_uring.h.
    assert (_uring.OP_NOP, _uring.OP_POLL_ADD, _uring.OP_POLL_REMOVE, _uring.OP_TIMEOUT, _uring.OP_ACCEPT,
            _uring.OP_ASYNC_CANCEL, _uring.OP_CONNECT, _uring.OP_READ, _uring.OP_WRITE, _uring.OP_SEND,
            _uring.OP_RECV) == (0, 6, 7, 11, 13, 14, 16, 22, 23, 26, 27)
    assert (_uring.SETUP_SINGLE_ISSUER, _uring.SETUP_DEFER_TASKRUN, _uring.SETUP_R_DISABLED) == (4096, 8192, 64)
    assert (_uring.OFF_SQ_RING, _uring.OFF_CQ_RING, _uring.OFF_SQES) == (0, 0x8000000, 0x10000000)


def test_uring_is_opt_in_and_never_the_default():
    assert "uring" in platform.known_backends()
    if not os.environ.get("POORIO_BACKEND"):
        assert platform.default_backend() != "uring"


# -- IOCP: OVERLAPPED, OVERLAPPED_ENTRY, WSABUF ------------------------------------------
#
# minwinbase.h: OVERLAPPED { ULONG_PTR Internal; ULONG_PTR InternalHigh;
# union { struct { DWORD Offset; DWORD OffsetHigh; }; PVOID Pointer; };
# HANDLE hEvent; } -- 32 bytes on Win64, 20 on Win32.  minwinbase.h:
# OVERLAPPED_ENTRY { ULONG_PTR lpCompletionKey; LPOVERLAPPED lpOverlapped;
# ULONG_PTR Internal; DWORD dwNumberOfBytesTransferred; } -- 32 (with 4 bytes
# of tail padding) and 16.  ws2def.h: WSABUF { ULONG len; CHAR *buf; } -- 16
# (the pointer 8-aligned) and 8.

from poorio.platform import iocp  # noqa: E402


@pytest.mark.parametrize(
    "pointer_size, size, offsets",
    [
        (8, 32, dict(Internal=0, InternalHigh=8, Offset=16, OffsetHigh=20, hEvent=24)),
        (4, 20, dict(Internal=0, InternalHigh=4, Offset=8, OffsetHigh=12, hEvent=16)),
    ],
    ids=["win64", "win32"],
)
def test_overlapped(pointer_size, size, offsets):
    fmt, got_size, got_offsets = iocp.overlapped_layout(pointer_size)
    assert struct.calcsize(fmt) == got_size == size
    assert got_offsets == offsets
    # The same layout built by ctypes with this ABI's pointer-sized fields.
    ptr = ctypes.c_uint64 if pointer_size == 8 else ctypes.c_uint32
    fields = [("Internal", ptr), ("InternalHigh", ptr), ("Offset", ctypes.c_uint32), ("OffsetHigh", ctypes.c_uint32),
              ("hEvent", ptr)]
    ctype = type("OVERLAPPED", (ctypes.Structure,), {"_pack_": pointer_size, "_layout_": "ms", "_fields_": fields})
    assert ctypes.sizeof(ctype) == size
    assert {name: getattr(ctype, name).offset for name in offsets} == offsets


@pytest.mark.parametrize("pointer_size, size", [(8, 32), (4, 16)], ids=["win64", "win32"])
def test_overlapped_entry(pointer_size, size):
    fmt, got = iocp.overlapped_entry_layout(pointer_size)
    assert struct.calcsize(fmt) == got == size
    raw = struct.pack(fmt, 1, 0x1000, 0xC0000120, 77)
    assert struct.unpack(fmt, raw) == (1, 0x1000, 0xC0000120, 77)
    # dwNumberOfBytesTransferred sits right after three pointer-sized fields.
    assert struct.unpack_from("<I", raw, 3 * pointer_size)[0] == 77


@pytest.mark.parametrize("pointer_size, size, buf_at", [(8, 16, 8), (4, 8, 4)], ids=["win64", "win32"])
def test_wsabuf(pointer_size, size, buf_at):
    fmt, got = iocp.wsabuf_layout(pointer_size)
    assert struct.calcsize(fmt) == got == size
    raw = struct.pack(fmt, 5, 0x12345678)
    assert struct.unpack_from("<I", raw, 0)[0] == 5
    assert struct.unpack_from("<I", raw, buf_at)[0] == 0x12345678


def test_iocp_layouts_refuse_other_pointer_sizes():
    for layout in (iocp.overlapped_layout, iocp.overlapped_entry_layout, iocp.wsabuf_layout):
        with pytest.raises(ValueError):
            layout(2)


def test_winsock_extension_guids():
    # mswsock.h: WSAID_ACCEPTEX {b5367df1-cbac-11cf-95ca-00805f48a192},
    # WSAID_CONNECTEX {25a207b9-ddf3-4660-8ee9-76e58c74063e}, in GUID's byte order.
    import uuid

    assert iocp.WSAID_ACCEPTEX == uuid.UUID("b5367df1-cbac-11cf-95ca-00805f48a192").bytes_le
    assert iocp.WSAID_CONNECTEX == uuid.UUID("25a207b9-ddf3-4660-8ee9-76e58c74063e").bytes_le


@not_windows
def test_iocp_reports_unavailable_here():
    assert iocp.available() is False
    with pytest.raises(BackendUnavailableError):
        iocp.Port(4)


# -- struct sockaddr, as the completion backends' connect hands it over ---------------------

from poorio.platform._sockaddr import sockaddr  # noqa: E402


def test_sockaddr_in():
    raw = sockaddr(socket.AF_INET, ("127.0.0.1", 0x1234))
    native = "<" if sys.byteorder == "little" else ">"
    assert len(raw) == 16  # sizeof(struct sockaddr_in)
    assert struct.unpack_from(native + "H", raw)[0] == socket.AF_INET  # sa_family_t: host order
    assert raw[2:4] == b"\x12\x34" and raw[4:8] == b"\x7f\x00\x00\x01" and raw[8:] == bytes(8)


def test_sockaddr_in6():
    raw = sockaddr(socket.AF_INET6, ("::1", 80, 0x01020304, 7))
    native = "<" if sys.byteorder == "little" else ">"
    assert len(raw) == 28  # sizeof(struct sockaddr_in6)
    assert raw[2:4] == b"\x00\x50" and raw[4:8] == b"\x01\x02\x03\x04"  # port, flowinfo: network order
    assert raw[8:24] == bytes(15) + b"\x01" and struct.unpack_from(native + "I", raw, 24)[0] == 7


def test_sockaddr_un_and_refusals():
    if hasattr(socket, "AF_UNIX"):
        assert sockaddr(socket.AF_UNIX, "/tmp/x")[2:] == b"/tmp/x\x00"
        assert sockaddr(socket.AF_UNIX, b"\x00abstract")[2:] == b"\x00abstract"  # no terminator
        with pytest.raises(ValueError):
            sockaddr(socket.AF_UNIX, "x" * 200)
    with pytest.raises(OSError):
        sockaddr(socket.AF_INET, ("localhost", 80))  # names are resolved above the platform layer
    with pytest.raises(ValueError):
        sockaddr(12345, ("1.2.3.4", 1))
