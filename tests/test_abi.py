"""The C structs poorio hands the kernel, checked against the documented ABI.

Where each number comes from:

* ``struct pollfd`` -- POSIX ``<poll.h>`` (glibc ``sys/poll.h``): ``int fd;
  short events; short revents;`` -- 8 bytes, fd at 0, events at 4, revents
  at 6 on every ABI with a 4-byte int and 2-byte short.  glibc's
  ``sys/poll.h`` declares ``typedef unsigned long int nfds_t``.
* ``struct epoll_event`` -- glibc ``sys/epoll.h``: ``uint32_t events;
  epoll_data_t data;`` followed by ``__EPOLL_PACKED``.  glibc's x86
  ``bits/epoll.h`` (sysdeps/unix/sysv/linux/x86, shared by i386, x86_64 and
  x32) defines it as ``__attribute__((__packed__))``: 12 bytes, data at 4.
  Everywhere else ``sys/epoll.h`` defines it empty and ``data`` (a union
  holding a ``uint64_t``) is 8-aligned: 16 bytes, data at 8.  (On i386 a
  ``uint64_t`` is 4-aligned anyway, so packing changes nothing there.)

* io_uring's ``struct io_uring_sqe``/``io_uring_cqe``/``io_uring_params`` --
  ``linux/io_uring.h``; the same on every ABI (see test_abi_portable.py),
  compiled against here when the header is installed, and driven through
  the kernel itself.

Besides the documentation, two witnesses that do not take poorio's word for
anything: the kernel itself (records written by ``epoll_wait``/``poll``
decode to what was registered), and the C compiler, when one is installed.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import struct
import subprocess
import sys

import pytest

from poorio.platform import _libc, epoll, poll

LINUX = sys.platform.startswith("linux")
needs_linux = pytest.mark.skipif(not LINUX, reason="epoll and glibc's headers are Linux's")

# (size, offset of data) of struct epoll_event, from the headers quoted above.
PACKED_LAYOUT = (12, 4)
NATURAL_LAYOUT = (16, 8)
X86_ARCHES = ("x86_64", "i386", "i486", "i586", "i686")


def documented_epoll_layout(multiarch: str) -> tuple:
    return PACKED_LAYOUT if multiarch.split("-", 1)[0] in X86_ARCHES else NATURAL_LAYOUT


# -- the layout choice ---------------------------------------------------------


@pytest.mark.parametrize(
    "multiarch, packed",
    [
        ("x86_64-linux-gnu", True),
        ("x86_64-linux-gnux32", True),  # x32: __x86_64__ is defined, pointers are 4 bytes
        ("x86_64-linux-musl", True),
        ("i386-linux-gnu", True),
        ("i686-linux-gnu", True),
        ("aarch64-linux-gnu", False),
        ("arm-linux-gnueabihf", False),  # AAPCS: a uint64_t is 8-aligned on 32-bit ARM too
        ("arm-linux-gnueabi", False),
        ("s390x-linux-gnu", False),
        ("powerpc64le-linux-gnu", False),
        ("riscv64-linux-gnu", False),
        ("mips64el-linux-gnuabi64", False),
    ],
)
def test_the_choice_follows_the_target_triplet(multiarch, packed):
    assert epoll._packed_for(multiarch) is packed
    assert documented_epoll_layout(multiarch) == (PACKED_LAYOUT if packed else NATURAL_LAYOUT)


def test_the_triplet_is_the_interpreters():
    recorded = getattr(sys.implementation, "_multiarch", None)
    if recorded:
        assert _libc.MULTIARCH == recorded
    else:
        import sysconfig

        # Windows builds record no triplet; sysconfig names their target instead.
        expected = sysconfig.get_platform() if sys.platform == "win32" else sysconfig.get_config_var("MULTIARCH")
        if not expected:
            pytest.skip("this interpreter records no target triplet")
        assert _libc.MULTIARCH == expected
    assert epoll.PACKED == epoll._packed_for(_libc.MULTIARCH)


# -- struct epoll_event ----------------------------------------------------------


@needs_linux
def test_epoll_event_matches_the_documented_abi():
    size, data_offset = documented_epoll_layout(_libc.MULTIARCH)
    assert ctypes.sizeof(epoll.epoll_event) == size
    assert epoll.epoll_event.events.offset == 0 and epoll.epoll_event.events.size == 4
    assert epoll.epoll_event.data.offset == data_offset and epoll.epoll_event.data.size == 8
    assert struct.calcsize(epoll.EVENT_FORMAT) == size


def test_epoll_format_and_structure_agree():
    events, data = 0x80000019, 0x0102030405060708
    packed = struct.pack(epoll.EVENT_FORMAT, events, data)
    record = epoll.epoll_event.from_buffer_copy(packed)
    assert (record.events, record.data) == (events, data)
    assert bytes(epoll.epoll_event(events, data)) == packed
    assert struct.calcsize(epoll.EVENT_FORMAT) == ctypes.sizeof(epoll.epoll_event)
    # Python 3.14 deprecates _pack_ without _layout_ = "ms".
    if "_pack_" in vars(epoll.epoll_event):
        assert vars(epoll.epoll_event).get("_layout_") == "ms"


@needs_linux
def test_the_kernel_writes_what_we_decode():
    if not epoll.available():
        pytest.skip("epoll cannot run here")
    record = struct.Struct(epoll.EVENT_FORMAT)
    epfd = epoll._create1(epoll.EPOLL_CLOEXEC)
    assert epfd >= 0
    pipes = [os.pipe(), os.pipe()]
    try:
        # Tags that fill all 64 bits of data, different in every byte.
        tags = [0x1122334455667788, 0x8877665544332211]
        one = ctypes.create_string_buffer(record.size)
        for (reader, writer), tag in zip(pipes, tags):
            os.write(writer, b"x")
            record.pack_into(one, 0, epoll.EPOLLIN, tag)
            assert epoll._ctl(epfd, epoll.EPOLL_CTL_ADD, reader, one) == 0
        # Room for three records, prefilled so an untouched one is visible.
        ready = ctypes.create_string_buffer(b"\xaa" * (3 * record.size), 3 * record.size)
        assert epoll._wait(epfd, ready, 3, 0) == 2
        decoded = sorted(record.iter_unpack(ready.raw[: 2 * record.size]), key=lambda pair: pair[1])
        assert decoded == [(epoll.EPOLLIN, tags[0]), (epoll.EPOLLIN, tags[1])]
        assert ready.raw[2 * record.size :] == b"\xaa" * record.size
    finally:
        os.close(epfd)
        for reader, writer in pipes:
            os.close(reader)
            os.close(writer)


# -- struct pollfd ---------------------------------------------------------------


def test_pollfd_matches_the_documented_abi():
    assert ctypes.sizeof(poll.pollfd) == 8
    assert (poll.pollfd.fd.offset, poll.pollfd.events.offset, poll.pollfd.revents.offset) == (0, 4, 6)
    assert (poll.pollfd.fd.size, poll.pollfd.events.size, poll.pollfd.revents.size) == (4, 2, 2)


def test_pollfd_format_and_structure_agree():
    record = poll.ArrayPool._record
    assert record.size == ctypes.sizeof(poll.ArrayPool._record_type)
    assert poll.ArrayPool._revents_offset == poll.pollfd.revents.offset
    packed = record.pack(-7, poll.POLLIN | poll.POLLOUT, -1)
    decoded = poll.pollfd.from_buffer_copy(packed)
    assert (decoded.fd, decoded.events, decoded.revents) == (-7, poll.POLLIN | poll.POLLOUT, -1)
    assert bytes(poll.pollfd(-7, poll.POLLIN | poll.POLLOUT, -1)) == packed


@needs_linux
def test_nfds_t_is_unsigned_long_on_linux():
    assert poll._nfds_t is ctypes.c_ulong


def test_the_kernel_fills_revents_where_we_read_it():
    if not poll.available():
        pytest.skip("poll(2) cannot run here")
    reader, writer = os.pipe()
    try:
        os.write(writer, b"x")
        closed = os.dup(reader)
        os.close(closed)
        array = (poll.pollfd * 3)((reader, poll.POLLIN, 0), (writer, poll.POLLIN, 0), (closed, poll.POLLIN, 0))
        assert poll._poll(array, 3, 0) == 2
        raw = bytes(array)
        revents = [struct.unpack_from("=h", raw, i * 8 + 6)[0] for i in range(3)]
        assert revents == [poll.POLLIN, 0, poll.POLLNVAL]
        assert [entry.revents for entry in array] == revents
    finally:
        os.close(reader)
        os.close(writer)


# -- the C compiler as a witness ---------------------------------------------------------

_PROBE = r"""
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/epoll.h>

int main(void)
{
    printf("%zu %zu %zu %zu %zu %zu %zu %zu\n",
           sizeof(void *), sizeof(struct epoll_event), offsetof(struct epoll_event, data),
           sizeof(struct pollfd), offsetof(struct pollfd, events), offsetof(struct pollfd, revents),
           sizeof(nfds_t), (size_t)EPOLL_CLOEXEC);
    return 0;
}
"""


def compiled_output(tmp_path, name: str, source: str) -> str:
    """What a C program prints, built here with the C compiler (the test skips without one)."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.skip("no C compiler installed")
    path = tmp_path / f"{name}.c"
    path.write_text(source)
    program = tmp_path / name
    built = subprocess.run(
        [compiler, str(path), "-o", str(program)], capture_output=True, text=True, timeout=60
    )
    if built.returncode != 0:
        pytest.skip(f"the C compiler cannot build against these headers: {built.stderr.strip()[:200]}")
    return subprocess.run([str(program)], capture_output=True, text=True, timeout=20, check=True).stdout


@needs_linux
def test_the_c_compiler_agrees(tmp_path):
    numbers = [int(word) for word in compiled_output(tmp_path, "probe", _PROBE).split()]
    pointer, event_size, data_offset, pollfd_size, events_offset, revents_offset, nfds, cloexec = numbers
    if pointer != _libc.POINTER_SIZE:
        pytest.skip("the compiler targets another ABI than this interpreter")
    assert (event_size, data_offset) == (ctypes.sizeof(epoll.epoll_event), epoll.epoll_event.data.offset)
    assert (pollfd_size, events_offset, revents_offset) == (
        ctypes.sizeof(poll.pollfd),
        poll.pollfd.events.offset,
        poll.pollfd.revents.offset,
    )
    assert nfds == ctypes.sizeof(poll._nfds_t)
    assert cloexec == epoll.EPOLL_CLOEXEC



def test_epoll_flags_are_the_portable_flags_bit_for_bit():
    """epoll.py translates a ready record with one AND; that needs these equal (<sys/epoll.h>)."""
    from poorio.platform import ERROR, HANGUP, READABLE, WRITABLE

    assert (epoll.EPOLLIN, epoll.EPOLLOUT, epoll.EPOLLERR, epoll.EPOLLHUP) == (READABLE, WRITABLE, ERROR, HANGUP)


# -- io_uring ---------------------------------------------------------------------------------

from poorio.platform import _uring, uring  # noqa: E402

needs_uring = pytest.mark.skipif(
    not LINUX or not uring.available(), reason=f"io_uring is not usable here: {uring.unavailable_reason()}"
)

_URING_PROBE = r"""
#include <linux/io_uring.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/syscall.h>

#define OFF(type, field) (unsigned long)offsetof(struct type, field)

int main(void)
{
    printf("%zu %zu %zu\n", sizeof(struct io_uring_sqe), sizeof(struct io_uring_cqe), sizeof(struct io_uring_params));
    printf("%lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu\n",
           OFF(io_uring_sqe, opcode), OFF(io_uring_sqe, flags), OFF(io_uring_sqe, ioprio), OFF(io_uring_sqe, fd),
           OFF(io_uring_sqe, off), OFF(io_uring_sqe, addr), OFF(io_uring_sqe, len), OFF(io_uring_sqe, poll32_events),
           OFF(io_uring_sqe, user_data), OFF(io_uring_sqe, buf_index), OFF(io_uring_sqe, personality),
           OFF(io_uring_sqe, splice_fd_in), OFF(io_uring_sqe, addr3));
    printf("%lu %lu %lu\n", OFF(io_uring_cqe, user_data), OFF(io_uring_cqe, res), OFF(io_uring_cqe, flags));
    printf("%lu %lu %lu %lu\n", OFF(io_uring_params, sq_off), OFF(io_uring_params, cq_off),
           OFF(io_uring_params, features), (unsigned long)sizeof(struct io_sqring_offsets));
    printf("%d %d %d %d %d %d %d %d %d %d %d\n", IORING_OP_NOP, IORING_OP_POLL_ADD, IORING_OP_POLL_REMOVE,
           IORING_OP_TIMEOUT, IORING_OP_ACCEPT, IORING_OP_ASYNC_CANCEL, IORING_OP_CONNECT, IORING_OP_READ,
           IORING_OP_WRITE, IORING_OP_SEND, IORING_OP_RECV);
    printf("%ld %ld %ld\n", (long)__NR_io_uring_setup, (long)__NR_io_uring_enter, (long)__NR_io_uring_register);
    return 0;
}
"""


@needs_linux
def test_the_c_compiler_agrees_on_io_uring(tmp_path):
    lines = compiled_output(tmp_path, "uring_probe", _URING_PROBE).splitlines()
    sizes, sqe, cqe, params, opcodes, numbers = ([int(word) for word in line.split()] for line in lines)
    assert sizes == [_uring.SQE.size, _uring.CQE.size, _uring.PARAMS.size]
    assert sqe == list(_uring.SQE_OFFSETS.values())
    assert cqe == list(_uring.CQE_OFFSETS.values())
    assert params == [40, 80, 20, 40]
    assert opcodes == [_uring.OP_NOP, _uring.OP_POLL_ADD, _uring.OP_POLL_REMOVE, _uring.OP_TIMEOUT, _uring.OP_ACCEPT,
                       _uring.OP_ASYNC_CANCEL, _uring.OP_CONNECT, _uring.OP_READ, _uring.OP_WRITE, _uring.OP_SEND,
                       _uring.OP_RECV]
    assert tuple(numbers) == _uring.syscall_numbers(_libc.MULTIARCH)


@needs_uring
def test_the_kernel_reads_our_sqes_and_writes_cqes_we_decode():
    rings = _uring.Rings(4, 8)
    try:
        assert rings.sq_entries == 4 and rings.cq_entries == 8
        assert rings.features & _uring.FEATURES_NEEDED == _uring.FEATURES_NEEDED
        tags = [0x1122334455667788, 0x8877665544332211, 0xFFFFFFFFFFFFFFFF]
        for tag in tags:
            rings.prep(_uring.OP_NOP, -1, 0, 0, 0, 0, tag)
        # A read from a closed fd: the kernel's -EBADF comes back in res, signed.
        reader, writer = os.pipe()
        os.close(reader)
        os.close(writer)
        rings.prep(_uring.OP_READ, reader, 0, 0, 0, 0, 7)
        assert rings.enter(4, None) == [(tags[0], 0, 0), (tags[1], 0, 0), (tags[2], 0, 0), (7, -errno.EBADF, 0)]
        assert rings.enter(0, None) == []
        # Wrap around both rings a few times.
        for round_ in range(20):
            rings.prep(_uring.OP_NOP, -1, 0, 0, 0, 0, round_)
            rings.prep(_uring.OP_NOP, -1, 0, 0, 0, 0, round_ + 1000)
            assert rings.enter(2, None) == [(round_, 0, 0), (round_ + 1000, 0, 0)]
    finally:
        rings.close()


@needs_uring
def test_a_poll_mask_reaches_the_kernel_as_asked():
    # WRITABLE alone on a fresh pipe's writer: ready at once, and only POLLOUT comes back.
    rings = _uring.Rings(4, 8)
    reader, writer = os.pipe()
    try:
        rings.prep(_uring.OP_POLL_ADD, writer, 0, 0, 0, _uring.poll_mask_field(0x004), 1)
        rings.prep(_uring.OP_POLL_ADD, reader, 0, 0, 0, _uring.poll_mask_field(0x004), 2)
        assert rings.enter(1, None) == [(1, 0x004, 0)]
        rings.prep(_uring.OP_POLL_REMOVE, -1, 2, 0, 0, 0, 3)
        assert sorted(rings.enter(2, None)) == [(2, -errno.ECANCELED, 0), (3, 0, 0)]
    finally:
        rings.close()
        os.close(reader)
        os.close(writer)
