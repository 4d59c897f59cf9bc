"""The link between process actors, fed hostile bytes: every bad frame is MalformedMessageError, nothing allocates past the limit."""

from __future__ import annotations

import logging
import socket
import struct

import pytest

import poorio
from fiber_helpers import run
from poorio.actors import _link
from poorio.actors.address import Address
from poorio.errors import MalformedMessageError
from poorio.net import SocketStream


def feed(data: bytes, record=None):
    """Run a link's read loop over ``data`` (then end of stream); return what it raised, or None."""

    async def main():
        mine, theirs = socket.socketpair()
        with theirs:
            theirs.sendall(data)
            theirs.shutdown(socket.SHUT_WR)
            link = _link.Link(SocketStream(mine), (7,), record)
            try:
                with poorio.fail_after(30):
                    await link.read_loop()
            except MalformedMessageError as error:
                return error
            finally:
                link.close()
        return None

    return run(main)


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


@pytest.mark.parametrize(
    "data,why",
    [
        (struct.pack(">I", 0), "frames hold 1 to"),
        (struct.pack(">I", _link.MAX_FRAME + 1) + b"M", "frames hold 1 to"),
        (struct.pack(">I", 2**32 - 1), "frames hold 1 to"),
        (frame(b"Q"), "unknown frame tag"),
        (frame(b"M\x00"), "truncated"),
        (frame(b"M\xc8" + b"\x00" * 8), "runs past its end"),
        (frame(b"X" + b"\xff"), "unknown tag byte"),
        (frame(b"B" + b"N"), "not a tuple"),
        (frame(b"M")[:4], "inside a frame"),
        (frame(b"N" * 10)[:8], "inside a frame"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_bad_frame_is_malformed(data, why):
    error = feed(data)
    assert error is not None and why in str(error), error


def test_an_exit_frame_from_a_parent_is_malformed():
    assert "unexpected frame 'X'" in str(feed(_link._frame("X", "ok", b"N")))


def test_a_message_to_nobody_is_dropped_with_a_warning_and_reading_goes_on(caplog):
    nobody = Address((), 999_999)
    data = _link.message_frame(nobody, b"N") * 3
    with caplog.at_level(logging.WARNING, logger="poorio"):
        assert feed(data) is None  # three frames, then a clean end
    assert sum("a message was dropped" in r.getMessage() for r in caplog.records) == 3
