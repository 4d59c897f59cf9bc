"""Standard streams: child programs using poorio's stdin/stdout with pipes, /dev/null, files and a pty; flags untouched."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap

import pytest

from fiber_helpers import backend, run  # noqa: F401 (fixtures)
from poorio import move_on_after, sleep, spawn, system
from poorio.errors import BusyResourceError, ClosedResourceError
from poorio.system import POLL, THREAD, StdStream
from test_system_portable import ECHO_CHILD

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The echo program, also reporting whether fd 0/1's O_NONBLOCK flags are as
# they were at exit.
CHILD = (
    "import fcntl, os\n"
    "flags = [fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK for fd in (0, 1)]\n"
    + ECHO_CHILD
    + textwrap.dedent("""
        after = [fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK for fd in (0, 1)]
        sys.stderr.write("flags kept\\n" if after == flags else f"flags changed {flags} -> {after}\\n")
    """)
)


def _child(backend: str, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-c", CHILD, backend], env=env, timeout=60, check=True,
                          stderr=subprocess.PIPE, **kwargs)


def test_child_with_pipes_moves_megabytes(backend):
    data = b"".join(b"line %d of the input\n" % i for i in range(100_000))  # ~2.4 MB
    result = _child(backend, input=data, stdout=subprocess.PIPE)
    assert result.stdout == data.upper()
    assert result.stderr.splitlines() == [b"poll poll %d" % len(data), b"flags kept"]


def test_child_with_dev_null(backend):
    with open(os.devnull, "rb") as null_in, open(os.devnull, "wb") as null_out:
        result = _child(backend, stdin=null_in, stdout=null_out)
    assert result.stderr.splitlines() == [b"thread thread 0", b"flags kept"]


def test_child_with_regular_files(backend, tmp_path):
    (tmp_path / "in").write_bytes(b"a\nb\nc")
    with open(tmp_path / "in", "rb") as fin, open(tmp_path / "out", "wb") as fout:
        result = _child(backend, stdin=fin, stdout=fout)
    assert (tmp_path / "out").read_bytes() == b"A\nB\nC"
    assert result.stderr.splitlines() == [b"thread thread 5", b"flags kept"]


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="no ptys here")
def test_child_on_a_terminal_keeps_it_blocking(backend):
    """A pty shared with "the shell" (this process): its flags must be untouched after the child exits."""
    master, slave = os.openpty()
    try:
        before = fcntl.fcntl(slave, fcntl.F_GETFL)
        os.write(master, b"typed\n\x04")  # a line, then end of input (^D)
        result = _child(backend, stdin=slave, stdout=subprocess.PIPE)
        assert result.stdout == b"TYPED\n"
        assert result.stderr.splitlines() == [b"thread poll 6", b"flags kept"]
        assert fcntl.fcntl(slave, fcntl.F_GETFL) == before
    finally:
        os.close(master)
        os.close(slave)


def test_in_process_pipe_stream(backend):
    r, w = os.pipe()
    try:
        flags = fcntl.fcntl(r, fcntl.F_GETFL), fcntl.fcntl(w, fcntl.F_GETFL)

        async def main():
            reader, writer = StdStream(r), StdStream(w)
            assert reader.how == writer.how == POLL
            sent = await writer.write_some(b"x" * 100_000)
            assert 0 < sent <= os.fpathconf(w, "PC_PIPE_BUF")  # one write of at most PIPE_BUF
            assert len(await reader.read_some(10)) == 10
            assert len(await reader.read_some(100_000)) == sent - 10
            spawn(reader.read_some)
            await sleep(0.01)
            with pytest.raises(BusyResourceError):
                await reader.read_some()
            reader.close()  # detaches: the waiting fiber wakes, the fd stays open
            reader.close()
            assert reader.closed and "closed" in repr(reader)
            with pytest.raises(ClosedResourceError):
                await reader.read_some()
            writer.close()

        run(main, backend=backend)
        assert (fcntl.fcntl(r, fcntl.F_GETFL), fcntl.fcntl(w, fcntl.F_GETFL)) == flags
        os.fstat(r)  # still open
    finally:
        os.close(r)
        os.close(w)


def test_thread_mode_read_is_cancellable(backend):
    r, w = os.pipe()
    try:

        async def main():
            reader = StdStream(r, THREAD)
            with move_on_after(0.05) as scope:
                await reader.read_some()
            assert scope.cancel_called
            os.write(w, b"z")  # the abandoned read in its thread takes it and ends

        run(main, backend=backend)
    finally:
        os.close(w)
        os.close(r)


def test_shared_streams_and_bad_arguments():
    assert system.stdin() is system.stdin()
    assert isinstance(system.stdout(), StdStream) and isinstance(system.stderr(), StdStream)
    with pytest.raises(ValueError):
        StdStream(0, "nonsense")
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError):
        StdStream(r)  # not open any more: EBADF from fstat
