"""The networking demos, each run as a subprocess with a safety timeout, on every backend."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from fiber_helpers import backend  # noqa: F401 (fixtures)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 60  # seconds: a safety net, the demos take well under one


def _demo(name: str, *args: str, backend: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, POORIO_BACKEND=backend)
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "demos", name), *args],
        capture_output=True, text=True, timeout=TIMEOUT, env=env,
    )  # fmt: skip


def test_echo_server_selftest(backend):
    proc = _demo("echo_server.py", "--selftest", backend=backend)
    assert proc.returncode == 0, proc.stderr
    assert "3 concurrent clients, echoes intact" in proc.stdout


def test_chat_server_selftest(backend):
    proc = _demo("chat_server.py", "--selftest", backend=backend)
    assert proc.returncode == 0, proc.stderr
    assert "guest1: hello from a" in proc.stdout and "left" in proc.stdout and "selftest: ok" in proc.stdout


def test_tls_echo_selftest(backend):
    proc = _demo("tls_echo.py", "--selftest", backend=backend)
    assert proc.returncode == 0, proc.stderr
    assert "selftest: ok" in proc.stdout or "skipped" in proc.stdout


def test_tcp_client_against_the_echo_server(backend):
    env = dict(os.environ, POORIO_BACKEND=backend)
    server = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "demos", "echo_server.py")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        banner = server.stdout.readline()
        port = re.search(r":(\d+)$", banner.strip()).group(1)
        proc = _demo("tcp_client.py", "127.0.0.1", port, "hello", "world", backend=backend)
    finally:
        server.kill()
        server.communicate()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello\nworld\n"


def test_tcp_client_reports_a_refused_connection(backend):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    proc = _demo("tcp_client.py", "127.0.0.1", port, backend=backend)
    assert proc.returncode == 1 and "cannot connect" in proc.stderr
