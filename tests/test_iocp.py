"""What is IOCP's own, beyond the proactor contract (tests/test_proactor.py): errors, handles, association.

These run where completion ports do: Windows, or Wine (tests/matrix/wine.sh).
Under Wine the winsock and pipe errors are Wine's rendition of Windows'.
"""

from __future__ import annotations

import errno
import socket
import time

import pytest

from poorio.platform import iocp

pytestmark = pytest.mark.skipif(not iocp.available(), reason="IOCP is Windows' (run tests/matrix/wine.sh)")

PATIENCE = 5.0


@pytest.fixture
def port():
    with iocp.Port(8) as port:
        yield port
        assert len(port) == 0


def collect(port, count: int = 1) -> dict:
    got = {}
    deadline = time.monotonic() + PATIENCE
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {got}"
        for token, result, flags in port.wait(deadline - time.monotonic()):
            got[token] = result
    return got


def test_a_bad_handle_is_refused_at_submission(port):
    reader, writer = iocp.pipe()
    iocp.close_handle(reader)
    iocp.close_handle(writer)
    with pytest.raises(OSError) as caught:
        port.submit_read(reader, bytearray(4), -1, "r")
    assert caught.value.winerror == 6  # ERROR_INVALID_HANDLE, unmodified
    assert len(port) == 0


def test_writing_to_a_pipe_without_a_reader_is_the_kernels_error(port):
    reader, writer = iocp.pipe()
    try:
        iocp.close_handle(reader)
        reader = None
        port.submit_write(writer, b"nobody reads this", -1, "w")
        result = collect(port)["w"]
        assert isinstance(result, OSError)
        assert result.winerror in (109, 232)  # ERROR_BROKEN_PIPE, ERROR_NO_DATA
        assert result.errno == errno.EPIPE
    finally:
        port.forget(writer)
        iocp.close_handle(writer)
        if reader is not None:
            iocp.close_handle(reader)


def test_a_cancelled_read_says_aborted_and_ecanceled(port):
    reader, writer = iocp.pipe()
    try:
        buf = bytearray(8)
        port.submit_read(reader, buf, -1, "r")
        assert port.wait(0) == []
        assert port.cancel("r")
        result = collect(port)["r"]
        assert isinstance(result, OSError)
        assert result.winerror == 995 and result.errno == errno.ECANCELED
    finally:
        for handle in (reader, writer):
            port.forget(handle)
            iocp.close_handle(handle)


def test_a_file_read_needs_an_offset(port, tmp_path):
    path = tmp_path / "data"
    path.write_bytes(b"abc")
    handle = iocp.open_file(str(path))
    try:
        with pytest.raises(ValueError):
            port.submit_read(handle, bytearray(3), -1, "r")
        assert len(port) == 0
    finally:
        port.forget(handle)
        iocp.close_handle(handle)


def test_a_file_write_at_minus_one_appends(port, tmp_path):
    path = tmp_path / "log"
    path.write_bytes(b"first,")
    handle = iocp.open_file(str(path), write=True)
    try:
        port.submit_write(handle, b"second", -1, "w")
        assert collect(port)["w"] == 6
    finally:
        port.forget(handle)
        iocp.close_handle(handle)
    assert path.read_bytes() == b"first,second"


def test_a_handle_is_associated_once(port):
    a, b = socket.socketpair()
    try:
        for round_ in range(3):
            port.submit_send(a, b"x", round_)
            assert collect(port)[round_] == 1
        assert b.recv(8) == b"xxx"
        with iocp.Port(2) as other:  # a second port cannot take a handle the first one has
            with pytest.raises(OSError) as caught:
                other.submit_send(a, b"y", "y")
            assert caught.value.winerror == 87  # ERROR_INVALID_PARAMETER
    finally:
        port.forget(a)
        a.close()
        b.close()


def test_the_zero_byte_read_consumes_nothing(port):
    a, b = socket.socketpair()
    try:
        port.submit_poll(a, iocp.READABLE, "readable")
        assert port.wait(0) == []
        b.send(b"kept")
        assert collect(port)["readable"] == iocp.READABLE
        a.setblocking(False)
        assert a.recv(8) == b"kept"
    finally:
        port.forget(a)
        a.close()
        b.close()


# -- relayed: a thread of the port's waits on it, for an owner that waits in WSAPoll --------------


def test_a_relayed_port_wakes_its_owner_and_hands_out_completions_on_the_owners_thread():
    import threading

    woken = threading.Event()
    port = iocp.Port(4)
    port.relay(woken.set)
    before = threading.active_count()
    reader, writer = iocp.pipe()
    try:
        buffer = bytearray(16)
        port.submit_read(reader, buffer, -1, "r")  # the first operation starts the relay thread
        assert threading.active_count() == before + 1
        assert port.completions() == []  # nothing yet: it does not wait
        port.submit_write(writer, b"relayed", -1, "w")
        got = {}
        deadline = time.monotonic() + PATIENCE
        while len(got) < 2:
            assert woken.wait(deadline - time.monotonic()), f"never woken; only {got}"
            woken.clear()
            got.update((token, result) for token, result, _ in port.completions())
        assert got == {"r": 7, "w": 7} and bytes(buffer[:7]) == b"relayed"
        # A read that fails at once queues no packet: the owner is woken all the same.
        iocp.close_handle(writer)
        port.forget(writer)
        writer = None
        woken.clear()
        port.submit_read(reader, buffer, -1, "end")
        assert woken.wait(PATIENCE)
        assert port.completions() == [("end", 0, 0)]  # the end of the pipe reads 0
    finally:
        port.forget(reader)
        iocp.close_handle(reader)
        if writer is not None:
            iocp.close_handle(writer)
        port.close()
    assert threading.active_count() == before  # close() joined the relay thread


def test_a_relayed_port_closed_with_a_read_in_flight_cancels_it_and_ends_its_thread():
    import threading

    port = iocp.Port(4)
    port.relay(lambda: None)
    before = threading.active_count()
    reader, writer = iocp.pipe()
    try:
        port.submit_read(reader, bytearray(8), -1, "pending")
        assert len(port) == 1
        port.close()
        assert len(port) == 0 and threading.active_count() == before
    finally:
        iocp.close_handle(reader)
        iocp.close_handle(writer)
