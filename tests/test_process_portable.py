"""Child processes: what holds on every system, Windows included (the Wine stage runs these).

``tests/test_process.py`` covers signals and the POSIX wait mechanisms.
The pipes here are ``os.pipe()`` streams where the pools wait on pipes,
and on Windows -- where WSAPoll cannot -- overlapped pipes read and
written through the scheduler's completion port (``ProactorStream``).
The children write through ``sys.stdout.buffer``, so no newline is
translated on Windows.
"""

from __future__ import annotations

import sys

import pytest

from fiber_helpers import backend, run  # noqa: F401 (fixtures)
from poorio import fail_after, move_on_after, process
from poorio.platform import facts

CHILD = [sys.executable, "-c"]


def test_wait_returns_the_exit_status(backend):
    async def main():
        with fail_after(30):
            async with await process.open_process(CHILD + ["raise SystemExit(3)"], stdout=process.DEVNULL) as proc:
                first = await proc.wait()
                return first, await proc.wait(), proc.returncode, proc.poll()

    assert run(main, backend=backend) == (3, 3, 3, 3)


def test_run_process_without_pipes(backend, tmp_path):
    out = tmp_path / "out.txt"

    async def main():
        with fail_after(30), open(out, "wb") as sink:
            return await process.run_process(CHILD + ["print('to a file'); raise SystemExit(4)"], stdout=sink)

    done = run(main, backend=backend)
    assert (done.returncode, done.stdout, done.stderr) == (4, None, None)
    assert out.read_bytes().strip() == b"to a file"


def test_aclose_kills_and_reaps_a_running_child(backend):
    async def main():
        with fail_after(30):
            proc = await process.open_process(CHILD + ["import time; time.sleep(60)"])
            await proc.aclose()
            return proc.returncode

    assert run(main, backend=backend) not in (None, 0)


ECHO = "import sys\nwhile True:\n    b = sys.stdin.buffer.read1(65536)\n    if not b: break\n    sys.stdout.buffer.write(b); sys.stdout.buffer.flush()\nsys.stderr.buffer.write(b'done'); sys.stderr.buffer.flush()"


def test_pipes_carry_a_childs_stdin_stdout_and_stderr_both_ways_at_once(backend):
    payload = bytes(range(256)) * 4096  # 1 MiB: more than a pipe holds, so both sides must wait their turn

    async def main():
        with fail_after(60):
            done = await process.run_process(CHILD + [ECHO], input=payload, capture_output=True)
        return done

    done = run(main, backend=backend)
    assert (done.returncode, done.stdout == payload, done.stderr) == (0, True, b"done")


def test_a_childs_pipes_are_streams_with_the_stream_helpers(backend):
    async def main():
        with fail_after(30):
            async with await process.open_process(CHILD + [ECHO], stdin=process.PIPE, stdout=process.PIPE) as proc:
                await proc.stdin.write_all(b"one line\n")
                line = await proc.stdout.read_line()
                await proc.stdin.aclose()  # the child sees the end of its input and exits
                rest = await proc.stdout.read_some()
                return line, rest, await proc.wait(), type(proc.stdout).__name__

    line, rest, code, kind = run(main, backend=backend)
    assert (line, rest, code) == (b"one line\n", b"", 0)
    assert kind == ("ProactorStream" if facts.PIPES_ARE_OPERATIONS else "FdStream")


def test_a_read_from_a_silent_child_can_be_given_up_and_aclose_reaps_it(backend):
    async def main():
        with fail_after(30):
            proc = await process.open_process(CHILD + ["import time; time.sleep(60)"], stdout=process.PIPE)
            async with proc:
                with move_on_after(0.1) as scope:
                    await proc.stdout.read_some()
            return scope.cancelled_caught, proc.returncode, proc.stdout.closed

    cancelled, code, closed = run(main, backend=backend)
    assert cancelled and closed and code not in (None, 0)
