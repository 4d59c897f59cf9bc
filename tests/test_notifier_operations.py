"""The notifier's proactor operations (start_read/start_write/abort) with real pipes and files."""

from __future__ import annotations

import errno
import os

import pytest

from poorio.errors import BackendUnavailableError, ClosedResourceError, PoolFullError
from poorio.events.notifier import Notifier
from poorio.platform import backends

PATIENCE = 5.0  # a safety net: each collect below returns as soon as the operation is done


class Op:
    """A context: the notifier sets ``result`` before it reports it."""

    def __init__(self, name):
        self.name, self.result = name, None


def collect_until(notifier, wanted):
    fired = []
    while wanted not in fired:
        got = notifier.collect(PATIENCE)
        assert got, "no completion within the safety net"
        fired += got
    return fired


@pytest.mark.skipif("uring" not in backends(), reason="io_uring is not usable here")
def test_read_write_and_abort_on_io_uring(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    r, w = os.pipe()
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        with Notifier(4, "uring") as notifier:
            assert notifier.completes_io
            buffer = bytearray(4)
            read = Op("read")
            notifier.start_read(fd, buffer, 3, read)
            assert notifier.busy() and notifier.statistics().operations == 1
            assert collect_until(notifier, read) == [read]
            assert read.result == 4 and buffer == b"3456"
            write = Op("write")
            notifier.start_write(fd, b"AB", 8, write)
            collect_until(notifier, write)
            assert write.result == 2 and path.read_bytes() == b"01234567AB"
            assert not notifier.busy() and notifier.statistics().operations == 0

            # A read of an empty pipe waits in the kernel until it is aborted.
            waiting = Op("pipe")
            notifier.start_read(r, bytearray(8), -1, waiting)
            assert notifier.collect(0.02) == []
            assert notifier.abort(waiting)
            collect_until(notifier, waiting)
            assert isinstance(waiting.result, OSError) and waiting.result.errno == errno.ECANCELED
            assert not notifier.abort(waiting)  # reported: nothing left to abort

            bad = Op("bad")
            notifier.start_read(fd, bytearray(1), -1 << 40, bad)  # a negative offset other than -1
            collect_until(notifier, bad)
            assert isinstance(bad.result, OSError) and bad.result.errno == errno.EINVAL

            # In flight at once: about the capacity (the pool's, wake-up channel included), then a clear error.
            with pytest.raises(PoolFullError):
                for i in range(2 * notifier.capacity):
                    notifier.start_read(r, bytearray(1), -1, Op(i))
            assert notifier.capacity <= notifier.statistics().operations == i <= notifier.capacity + 1
        # Closing with operations in flight cancels them and waits for the kernel.
        with pytest.raises(ClosedResourceError):
            notifier.start_read(fd, bytearray(1), 0, Op("late"))
    finally:
        for each in (r, w, fd):
            os.close(each)


@pytest.mark.parametrize("backend", [b for b in backends() if b != "uring"])
def test_a_readiness_backend_completes_nothing(backend, tmp_path):
    with Notifier(4, backend) as notifier:
        assert not notifier.completes_io
        assert not notifier.abort(Op("none"))
        with open(tmp_path / "f", "wb") as f:
            with pytest.raises(BackendUnavailableError, match="only reports readiness"):
                notifier.start_write(f.fileno(), b"x", 0, Op("w"))
        assert not notifier.busy()
