"""demos/events_loop.py runs by itself, on every backend, and prints its events in causal order."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from events_support import BACKENDS

DEMO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "demos", "events_loop.py")


@pytest.mark.skipif(not hasattr(os, "kill") or sys.platform == "win32", reason="the demo sends itself SIGUSR1")
@pytest.mark.parametrize("backend", BACKENDS)
def test_demo_runs_and_reports_every_kind(backend):
    env = dict(os.environ, POORIO_BACKEND=backend)
    done = subprocess.run(
        [sys.executable, DEMO], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = [re.sub(r"^\s*\d+\.\d\ds  ", "", line) for line in done.stdout.splitlines()]
    assert lines[-1] == "the set is empty (0 events): done"

    def first(text: str) -> int:
        return lines.index(text)

    ticks = [n for n, line in enumerate(lines) if line == "periodic timer triggered (timeout)"]
    behind = [re.match(r"\s+\(the loop fell behind: (\d+) ticks", line) for line in lines]
    skipped = sum(int(match.group(1)) for match in behind if match)
    assert len(ticks) + skipped == 5
    # Each action is caused by the event before it, so the order holds however slow the machine.
    assert ticks[0] < first("virtual event triggered (triggered)") < first("half a tick later ... (timeout)")
    assert first("socket readable (read)") < first("  read b'ping'")
    assert ticks[0] < first("socket readable (read)")
    assert ticks[0] < first("SIGUSR1 caught (signal)")
    assert "one-shot timer expired (timeout)" in lines
    # 5 ticks, 5 other events, the data read, the last line; nothing twice, nothing extra
    assert len(lines) == 12 - skipped + sum(1 for match in behind if match)
