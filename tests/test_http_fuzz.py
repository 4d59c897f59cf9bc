"""Malformed and truncated requests thrown at a live server: each gets a 4xx or a close, and the server goes on."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading

import pytest
from http_support import PY, ROOT, WAIT, LiveServer, python_env, read_response

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


async def body_app(scope, receive, send):
    """Reads the whole body and says how long it was: no path of its own can fail."""
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if message["type"] == "http.disconnect" or not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"%d" % size})


LIMITS = dict(max_request_line=512, max_header_bytes=2048, max_headers=20, max_body_size=4096, header_timeout=2.0,
              body_timeout=2.0, lifespan="off")  # fmt: skip

_token = st.sampled_from([b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS", b"G ET", b"", b"\x00", b"get", b"POST\t"])
_target = st.one_of(st.just(b"/"), st.just(b"/a?b=c"), st.binary(max_size=40), st.just(b"/" + b"x" * 600))
_version = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b"", b"HTTP/1.1 extra"])
_header = st.one_of(
    st.tuples(st.sampled_from([b"Host", b"X", b"Content-Type", b"Bad Name", b"", b":"]), st.binary(max_size=30)),
    st.tuples(st.just(b"Content-Length"), st.one_of(st.integers(-5, 10_000).map(lambda n: b"%d" % n), st.binary(max_size=8))),
    st.tuples(st.just(b"Transfer-Encoding"), st.sampled_from([b"chunked", b"gzip, chunked", b"chunked, gzip", b"xyz"])),
    st.tuples(st.just(b"Expect"), st.sampled_from([b"100-continue", b"nonsense"])),
    st.tuples(st.just(b"Connection"), st.sampled_from([b"close", b"keep-alive", b"upgrade"])),
    st.tuples(st.just(b"X-Long"), st.just(b"v" * 3000)),
)
_chunked = st.lists(st.binary(max_size=50), max_size=4).map(
    lambda parts: b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
)
_body = st.one_of(st.binary(max_size=300), _chunked, st.just(b"zz\r\n"), st.just(b"ffffffff\r\n"))


@st.composite
def _good(draw) -> bytes:
    """A well-formed request, the raw material of half the fuzz."""
    body = draw(st.binary(max_size=200))
    if draw(st.booleans()):
        framing = b"Content-Length: %d\r\n" % len(body)
    else:
        framing, body = b"Transfer-Encoding: chunked\r\n", b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
    return b"POST /a?b=c HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n" + body


@st.composite
def _odd(draw) -> bytes:
    line = draw(_token) + b" " + draw(_target) + b" " + draw(_version)
    headers = b"".join(name + b": " + value + b"\r\n" for name, value in draw(st.lists(_header, max_size=6)))
    return line + b"\r\n" + headers + b"\r\n" + draw(_body)


@st.composite
def requests(draw) -> bytes:
    """One request, well or badly formed, possibly cut short or with bytes flipped."""
    data = draw(st.one_of(_good(), _odd()))
    if draw(st.booleans()):  # truncated
        data = data[: draw(st.integers(0, len(data)))]
    for _ in range(draw(st.integers(0, 3))):  # damaged
        at = draw(st.integers(0, max(0, len(data) - 1)))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    return data


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, half-close, and read until the server closes; a reset counts as a close."""
    with socket.create_connection(("127.0.0.1", port), WAIT) as sock:
        reply = b""
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
        return reply


def test_fuzzed_requests_get_a_4xx_or_a_close_and_the_server_goes_on():
    statuses = set()
    with LiveServer(body_app, **LIMITS) as live:

        @settings(max_examples=int(os.environ.get("POORIO_HTTP_FUZZ_EXAMPLES", "150")), deadline=None)
        @given(requests())
        def check(data):
            reply = exchange(live.port, data)
            for status in re.findall(rb"^HTTP/1\.1 (\d{3}) ", reply, re.M):
                statuses.add(int(status))
                # 501: h11's answer to a transfer coding it does not implement (RFC 9112 6.1)
                assert int(status) in (100, 200, 501) or 400 <= int(status) < 500, (data, reply)
            if reply and not reply.startswith(b"HTTP/1.1 "):
                raise AssertionError(f"not an HTTP response: {reply[:100]!r} to {data!r}")
            with socket.create_connection(("127.0.0.1", live.port), WAIT) as sock:  # still serving
                sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
                assert read_response(sock, bytearray())[2] == b"3"

        check()
        live.wait_for(lambda s: s.connections == 0, "every fuzzed connection to be closed")
    assert {400, 200} <= statuses  # the fuzz reached both sides of the parser


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"VmRSS:\s+(\d+) kB", status.read()).group(1))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the server's memory from /proc")
def test_memory_stays_bounded_under_a_flood_of_oversized_requests():
    server = subprocess.Popen(
        [PY, "-m", "poorio.http", "asgi_apps:hello_app", "--port", "0", "--app-dir", os.path.join(ROOT, "tests"),
         "--log-level", "info"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=python_env(),
    )  # fmt: skip
    try:
        port = int(re.search(r"127\.0\.0\.1:(\d+)", server.stderr.readline()).group(1))

        pushed = []

        def flood(kind: bytes) -> None:
            junk = b"y" * 65536
            with socket.create_connection(("127.0.0.1", port), WAIT) as sock:
                try:
                    sock.sendall(kind)
                    for _ in range(64):  # up to 4 MiB each, against limits of 16 KiB heads and 10 MiB bodies
                        sock.sendall(junk)
                        pushed.append(len(junk))
                    sock.shutdown(socket.SHUT_WR)
                    while sock.recv(65536):
                        pass
                except OSError:  # cut off: what should happen
                    pass

        kinds = [b"GET / HTTP/1.1\r\nX-Endless: ", b"GET /", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n"]

        def round_of_30() -> None:
            threads = [threading.Thread(target=flood, args=(kinds[i % 3],)) for i in range(30)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(WAIT * 3)

        round_of_30()  # warm up: what is allocated once (and, on PyPy, the JIT's code) is in from here
        before = _rss_kib(server.pid)
        pushed.clear()
        for _ in range(3):
            round_of_30()
        after = _rss_kib(server.pid)
        with socket.create_connection(("127.0.0.1", port), WAIT) as sock:
            sock.sendall(b"GET /still HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock, bytearray())[2] == b"Hello, /still"
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=WAIT)
    # Each connection is cut off after a few MiB (the limit, then a lingering close
    # that drains at most 1 MiB): what stays must be bounded by the limits, not by the input.
    assert sum(pushed) > 90 * 1024 * 1024, f"the flood pushed only {sum(pushed)} bytes"
    assert after - before < 24 * 1024, f"RSS grew from {before} to {after} KiB while {sum(pushed) >> 20} MiB came in"
    assert server.returncode == 0
