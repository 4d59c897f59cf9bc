"""demos/http_server.py runs: its selftest, and as a server a real client talks to and SIGINT stops."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request

import pytest
from http_support import PY, ROOT, WAIT, python_env

DEMO = os.path.join(ROOT, "demos", "http_server.py")


def test_demo_selftest():
    out = subprocess.run([PY, DEMO, "--selftest"], capture_output=True, text=True, timeout=WAIT * 3, env=python_env())
    assert out.returncode == 0, out.stderr
    assert "GET /hello?name=selftest: b'{\"hello\": \"selftest\"}'" in out.stdout
    assert "GET /count?n=3: b'1\\n2\\n3\\n'" in out.stdout
    assert re.search(r"GET /_poorio/snapshot: \d+ fibers, backend \w+, 3 requests so far", out.stdout)
    assert out.stdout.rstrip().endswith("selftest: ok")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_demo_serves_a_browser_page_and_the_monitor_until_sigint():
    demo = subprocess.Popen([PY, DEMO, "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=python_env())  # fmt: skip
    try:
        port = re.search(r"127\.0\.0\.1:(\d+)/", demo.stdout.readline()).group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=WAIT) as page:
            assert b"<h1>poorio.http demo</h1>" in page.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_poorio/", timeout=WAIT) as monitor:
            assert b"poorio monitor" in monitor.read()
    finally:
        demo.send_signal(signal.SIGINT)
        _, err = demo.communicate(timeout=WAIT)
    assert demo.returncode == 0, err
    assert "signal 2: shutting down gracefully" in err
