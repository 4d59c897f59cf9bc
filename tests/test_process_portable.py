"""Child processes where poorio has no pipes to stream: what holds on every system, Windows included.

``tests/test_process.py`` covers pipes, signals and the POSIX wait
mechanisms; the tests here need none of them, so the Wine stage runs them
too.  Where the pools cannot wait on pipes (WSAPoll), asking for ``PIPE``
is a clear error, and waiting falls back to polling the child.
"""

from __future__ import annotations

import sys

import pytest

from fiber_helpers import backend, run  # noqa: F401 (fixtures)
from poorio import fail_after, process
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


@pytest.mark.skipif(facts.POLLS_PIPES, reason="the pools here wait on pipes: test_process.py streams them")
@pytest.mark.parametrize("which", ["stdin", "stdout", "stderr"])
def test_pipe_is_a_clear_error_where_pools_wait_on_sockets_only(backend, which):
    async def main():
        with pytest.raises(NotImplementedError, match="sockets only"):
            await process.open_process(CHILD + ["pass"], **{which: process.PIPE})

    run(main, backend=backend)
