"""The leak fixture of conftest.py catches each kind of leak it promises to, and passes a clean test.

It runs a small test file under a copy of the suite's conftest, in a child
pytest, and reads the verdicts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

LEAKY = textwrap.dedent(
    """
    import os, socket, subprocess, sys, threading, time
    import poorio
    from poorio.events import EventSet
    from poorio.platform import READABLE, new_pool

    KEEP = []

    def test_clean():
        a, b = socket.socketpair()
        a.close(); b.close()

    def test_fd():
        KEEP.append(socket.socket())

    def test_pool_with_a_registration():
        pool = new_pool(4, "poll")  # poll: no fd of its own, only the registry sees it
        a, b = socket.socketpair()
        pool.add(a, READABLE)
        KEEP.append((pool, a, b))

    def test_event_set_with_a_timer():
        events = EventSet(backend="poll")
        events.add("t", 60)
        KEEP.append(events)

    def test_thread():
        stop = threading.Event()
        KEEP.append(stop)
        threading.Thread(target=stop.wait, name="left-behind", daemon=True).start()

    def test_child():
        KEEP.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))

    def test_idle_worker_threads_are_fine():
        async def main():
            return await poorio.run_in_thread(sum, [1, 2])
        assert poorio.run(main) == 3
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the child check reads /proc")
def test_each_kind_of_leak_fails_its_test_and_a_clean_test_passes(tmp_path):
    for name in ("conftest.py", "_hang_guard.py", "fd_support.py"):
        shutil.copy(os.path.join(HERE, name), tmp_path / name)
    (tmp_path / "test_leaky.py").write_text(LEAKY)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q", "-rA", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    out = proc.stdout
    verdicts = {}
    for line in out.splitlines():
        for verdict in ("PASSED", "ERROR", "FAILED"):
            if line.startswith(verdict + " ") and "::" in line:
                test = line.split("::")[1].split()[0]
                verdicts.setdefault(test, set()).add(verdict)
    assert verdicts.get("test_clean") == {"PASSED"}, out
    assert verdicts.get("test_idle_worker_threads_are_fine") == {"PASSED"}, out
    for test, words in (
        ("test_fd", "test leaked fds"),
        ("test_pool_with_a_registration", "test left pools open"),
        ("test_event_set_with_a_timer", "test left pools open"),
        ("test_thread", "test left threads running"),
        ("test_child", "test left child processes"),
    ):
        assert "ERROR" in verdicts.get(test, ()), (test, out)
        assert words in out, (test, out)
