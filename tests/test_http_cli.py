"""``python -m poorio.http``: a real server process, stopped by real signals; the import error without the extra."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from http_support import PY, ROOT, WAIT, python_env, read_all, read_response

TESTS = os.path.join(ROOT, "tests")
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32",
                                reason="POSIX signals")  # fmt: skip


class Cli:
    """``python -m poorio.http`` in a child process; ``port`` is read from its startup log line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [PY, "-m", "poorio.http", *args, "--app-dir", TESTS],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=python_env(), cwd=ROOT,
        )  # fmt: skip
        self.lines = []
        self.port = None

    def wait_until_serving(self) -> Cli:
        found = self.wait_for_log(r"serving on http://127\.0\.0\.1:(\d+)", "the server did not start")
        self.port = int(found.group(1))
        return self

    def wait_for_log(self, pattern: str, failure: str) -> re.Match:
        """Read the server's log until a line matches ``pattern``; kill it and fail if it ends first."""
        deadline = time.monotonic() + WAIT
        while True:
            line = self.proc.stderr.readline()
            if not line or time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"{failure}:\n" + "".join(self.lines) + self.proc.stderr.read())
            self.lines.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    def finish(self) -> tuple:
        """Wait for the process; (exit status, everything it logged)."""
        try:
            _, err = self.proc.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError("the server did not stop:\n" + "".join(self.lines) + err) from None
        return self.proc.returncode, "".join(self.lines) + err


def test_serves_and_stops_on_sigterm():
    cli = Cli("asgi_apps:hello_app", "--port", "0", "--access-log").wait_until_serving()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{cli.port}/cli?x=1", timeout=WAIT) as response:
            assert response.read() == b"Hello, /cli?x=1"
    finally:
        cli.proc.send_signal(signal.SIGTERM)
    status, log = cli.finish()
    assert status == 0, log
    assert '"GET /cli?x=1" 200' in log  # the access log
    assert "signal 15: shutting down gracefully" in log and "stopped after 1 requests on 1 connections" in log


def test_sigint_lets_the_request_in_flight_finish_and_a_second_one_cancels():
    cli = Cli("asgi_apps:hello_app", "--port", "0").wait_until_serving()
    with socket.create_connection(("127.0.0.1", cli.port), WAIT) as sock:
        sock.sendall(b"GET /sleep?s=0.5 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)
        cli.proc.send_signal(signal.SIGINT)
        status, headers, body = read_response(sock, bytearray())
        assert (status, body, headers["connection"]) == (200, b"slept", "close")
    assert cli.finish()[0] == 0
    cli = Cli("asgi_apps:hello_app", "--port", "0", "--graceful-timeout", "30").wait_until_serving()
    with socket.create_connection(("127.0.0.1", cli.port), WAIT) as sock:
        sock.sendall(b"GET /sleep?s=60 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)
        cli.proc.send_signal(signal.SIGINT)
        # Two SIGINTs still pending together are delivered as one: the second
        # is sent once the server has taken the first.
        cli.wait_for_log(r"signal 2: shutting down gracefully", "the first SIGINT was not seen")
        cli.proc.send_signal(signal.SIGINT)  # do not wait for the minute
        assert read_all(sock) == b""
    status, log = cli.finish()
    assert status == 0 and "signal 2 again: cancelling every connection now" in log, log


def test_failed_lifespan_startup_exits_3():
    status, log = Cli("asgi_apps:failing_startup", "--port", "0").finish()
    assert status == 3 and "no database" in log


@pytest.mark.parametrize("spec,message", [("asgi_apps", "module:attribute"), ("asgi_apps:nope", "no attribute 'nope'"),
                                          ("no_such_module_here:app", "No module named")])  # fmt: skip
def test_an_app_that_cannot_be_loaded_exits_1(spec, message):
    status, log = Cli(spec, "--port", "0").finish()
    assert status == 1 and message in log


def test_an_address_in_use_exits_1():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        status, log = Cli("asgi_apps:hello_app", "--port", str(taken.getsockname()[1])).finish()
    assert status == 1 and "cannot serve on 127.0.0.1:" in log and "Address already in use" in log


def test_monitor_option_mounts_the_monitor(tmp_path):
    cli = Cli("asgi_apps:hello_app", "--port", "0", "--monitor").wait_until_serving()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{cli.port}/_poorio/snapshot", timeout=WAIT) as response:
            snap = json.loads(response.read())
        with urllib.request.urlopen(f"http://127.0.0.1:{cli.port}/_poorio", timeout=WAIT) as response:
            assert response.url.endswith("/_poorio/") and b"<title>poorio monitor</title>" in response.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{cli.port}/other", timeout=WAIT) as response:
            assert response.read() == b"Hello, /other"  # everything else is the app's
    finally:
        cli.proc.send_signal(signal.SIGTERM)
    assert cli.finish()[0] == 0
    names = {f["name"] for f in snap["fibers"]}
    assert {"http server", "http accept", "http timekeeper", "http stop", "http lifespan"} <= names
    assert snap["server"]["connections"] == 1 and snap["scheduler"]["backend"]


def test_unix_socket(tmp_path):
    path = str(tmp_path / "http.sock")
    cli = Cli("asgi_apps:hello_app", "--uds", path)
    try:
        deadline = time.monotonic() + WAIT
        while not os.path.exists(path):
            assert time.monotonic() < deadline and cli.proc.poll() is None, "no socket file appeared"
            time.sleep(0.01)
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(WAIT)
            sock.connect(path)
            sock.sendall(b"GET /unix HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert read_all(sock).endswith(b"Hello, /unix")
    finally:
        cli.proc.send_signal(signal.SIGTERM)
    assert cli.finish()[0] == 0 and not os.path.exists(path)


def test_import_without_the_extra_says_what_to_install():
    code = "import sys; sys.modules['h11'] = None\ntry:\n import poorio.http\nexcept ImportError as e:\n print(e)"
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=WAIT, env=python_env())
    assert out.stdout.strip() == "poorio.http needs h11 and wsproto (h11 is missing): pip install 'poorio[http]'"
    core = subprocess.run([PY, "-c", "import sys; sys.modules['h11'] = None; import poorio; print(poorio.run)"],
                          capture_output=True, text=True, timeout=WAIT, env=python_env())  # fmt: skip
    assert core.returncode == 0  # the core never needs it


def test_workers_serve_the_port_from_several_processes_and_stop_on_sigterm():
    cli = Cli("asgi_apps:hello_app", "--port", "0", "--workers", "2").wait_until_serving()
    try:
        pids = set()
        for _ in range(40):  # SO_REUSEPORT spreads connections by their addresses: both workers get some
            with urllib.request.urlopen(f"http://127.0.0.1:{cli.port}/pid", timeout=WAIT) as response:
                pids.add(int(response.read()))
            if len(pids) == 2:
                break
        assert len(pids) == 2 and cli.proc.pid not in pids
    finally:
        cli.proc.send_signal(signal.SIGTERM)
    status, log = cli.finish()
    assert status == 0, log
    for pid in pids:  # every worker is gone: reaped by the supervisor
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
