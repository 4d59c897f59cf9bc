"""A per-test watchdog: a test that hangs ends the run, printing where every thread was.

``faulthandler.dump_traceback_later`` would write into pytest's capture file,
which is lost when the process exits; so the traceback goes to a copy of the
real stderr, taken while capturing is suspended.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os


@contextlib.contextmanager
def hang_guard(config, seconds: float):
    """Exit the test process with every thread's traceback after ``seconds``."""
    capture = config.pluginmanager.getplugin("capturemanager")
    suspended = capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext()
    with suspended:
        stderr = os.dup(2)  # the terminal's stderr, not pytest's capture file
    faulthandler.dump_traceback_later(seconds, exit=True, file=stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        os.close(stderr)
