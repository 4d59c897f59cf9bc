"""poorio.http speaking HTTP/1.1 to raw sockets and http.client: keep-alive, pipelining, bodies, limits, errors."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import socket

import pytest
from http_support import LiveServer, hello_app, raw, read_all, read_response

import poorio


def test_keep_alive_serves_many_requests_on_one_connection():
    with LiveServer(hello_app) as live:
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
        try:
            for i in range(5):
                conn.request("GET", f"/n{i}?q={i}")
                response = conn.getresponse()
                assert response.status == 200
                assert response.read() == f"Hello, /n{i}?q={i}".encode()
                assert response.getheader("content-length") == str(len(f"Hello, /n{i}?q={i}"))
                assert response.getheader("date").endswith("GMT")
        finally:
            conn.close()
        live.wait_for(lambda s: s.connections == 0, "the connection to close")
        assert live.server.statistics().accepted == 1
        assert live.server.statistics().requests == 5


def test_pipelined_requests_are_answered_in_order():
    with LiveServer(hello_app) as live, raw(live.port) as sock:
        sock.sendall(b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(10)))
        buffered = bytearray()
        bodies = [read_response(sock, buffered)[2] for _ in range(10)]
        assert bodies == [b"Hello, /p%d" % i for i in range(10)]


def test_pipelined_requests_behind_a_slow_one_wait_their_turn():
    with LiveServer(hello_app) as live, raw(live.port) as sock:
        sock.sendall(b"GET /sleep?s=0.2 HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        buffered = bytearray()
        assert read_response(sock, buffered)[2] == b"slept"
        assert read_response(sock, buffered)[2] == b"Hello, /after"


def test_chunked_request_body_is_reassembled():
    with LiveServer(hello_app) as live, raw(live.port) as sock:
        chunks = [b"hello ", b"chunked ", b"world" * 1000]
        body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        status, headers, echoed = read_response(sock, bytearray())
        assert status == 200 and echoed == b"".join(chunks)


def test_streaming_response_is_chunked():
    with LiveServer(hello_app) as live, raw(live.port) as sock:
        sock.sendall(b"GET /stream?n=4 HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = read_response(sock, bytearray())
        assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
        assert body == b"chunk 0\nchunk 1\nchunk 2\nchunk 3\n"


def test_head_has_headers_but_no_body():
    with LiveServer(hello_app) as live, raw(live.port) as sock:
        sock.sendall(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n")
        buffered = bytearray()
        status, headers, body = read_response(sock, buffered, "HEAD")
        assert status == 200 and headers["content-length"] == str(len(b"Hello, /h")) and body == b""
        assert read_response(sock, buffered)[2] == b"Hello, /g"  # the HEAD answer carried no stray body


def test_expect_100_continue():
    with LiveServer(hello_app) as live, raw(live.port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = sock.recv(100)
        assert interim.startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"abcde")
        status, _, body = read_response(sock, bytearray())
        assert status == 200 and body == b"abcde"


def test_no_100_continue_for_an_app_that_answers_without_the_body():
    with LiveServer(hello_app) as live, raw(live.port) as sock:
        sock.sendall(b"POST /skip HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        status, headers, body = read_response(sock, bytearray())
        assert status == 200 and body == b"Hello, /skip"
        assert headers["connection"] == "close"  # the body was never read: the connection cannot go on
        assert read_all(sock) == b""


def test_connection_close_from_the_client_is_honoured():
    with LiveServer(hello_app) as live, raw(live.port) as sock:
        sock.sendall(b"GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = read_all(sock)
        assert b"connection: close" in reply.lower() and reply.endswith(b"Hello, /bye")


def test_http_1_0_closes_after_the_response():
    with LiveServer(hello_app) as live, raw(live.port) as sock:
        sock.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        reply = read_all(sock)
        assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"Hello, /old")


def test_large_upload_and_download_byte_for_byte():
    payload = os.urandom(3 * 1024 * 1024 + 17)
    with LiveServer(hello_app) as live:
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
        try:
            conn.request("POST", "/echo", body=payload)
            response = conn.getresponse()
            echoed = response.read()
        finally:
            conn.close()
    assert response.status == 200 and int(response.getheader("content-length")) == len(payload)
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()


def test_percent_encoded_path_and_root_path():
    seen = {}

    async def app(scope, receive, send):
        seen.update(path=scope["path"], raw_path=scope["raw_path"], root=scope["root_path"], query=scope["query_string"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with LiveServer(app, root_path="/api", lifespan="off") as live, raw(live.port) as sock:
        sock.sendall(b"GET /caf%C3%A9/a%20b?x=%20 HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = read_response(sock, bytearray())
    assert status == 204 and "content-length" not in headers
    assert seen == {"path": "/api/caf\u00e9/a b", "raw_path": b"/api/caf%C3%A9/a%20b", "root": "/api", "query": b"x=%20"}


# -- limits: every one answers and closes, and the server goes on -------------------------


@pytest.mark.parametrize(
    "request_bytes,status",
    [
        (b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(12)) + b"\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 2000 + b"\r\n\r\n", 431),
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413),
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"800\r\n" + b"z" * 2048 + b"\r\n0\r\n\r\n", 413),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    ],
    ids=["target-414", "header-count-431", "header-bytes-431", "declared-body-413", "chunked-body-413",
         "garbage-400", "bad-header-400", "bad-chunk-400", "two-lengths-400"],
)  # fmt: skip
def test_limits_answer_and_close(request_bytes, status):
    limits = dict(max_request_line=256, max_header_bytes=1024, max_headers=10, max_body_size=1024)
    with LiveServer(hello_app, **limits) as live:
        with raw(live.port) as sock:
            sock.sendall(request_bytes)
            reply = read_all(sock)
        assert reply.startswith(b"HTTP/1.1 %d " % status), reply[:200]
        assert b"connection: close" in reply.lower()
        with raw(live.port) as sock:  # and the server still serves
            sock.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock, bytearray())[2] == b"Hello, /ok"
        assert live.server.statistics().rejected == 1


def test_app_exception_is_a_500_and_logged_with_its_traceback(caplog):
    with caplog.at_level(logging.ERROR, logger="poorio.http"):
        with LiveServer(hello_app) as live, raw(live.port) as sock:
            sock.sendall(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = read_response(sock, bytearray())
            assert status == 500 and headers["connection"] == "close"
            assert read_all(sock) == b""
    errors = [r for r in caplog.records if r.name == "poorio.http" and r.exc_info]
    assert errors and "GET /boom" in errors[0].getMessage()
    assert isinstance(errors[0].exc_info[1], ValueError)


def test_app_that_never_responds_gets_a_500(caplog):
    with caplog.at_level(logging.ERROR, logger="poorio.http"):
        with LiveServer(hello_app) as live, raw(live.port) as sock:
            sock.sendall(b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock, bytearray())[0] == 500
    assert any("without starting a response" in r.getMessage() for r in caplog.records)


def test_exception_after_the_response_started_closes_the_connection(caplog):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("half way")

    with caplog.at_level(logging.ERROR, logger="poorio.http"):
        with LiveServer(app, lifespan="off") as live, raw(live.port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = read_all(sock)  # the chunked body never ends: the client sees it cut
    assert reply.startswith(b"HTTP/1.1 200 ") and b"partial" in reply and not reply.endswith(b"0\r\n\r\n")
    assert any(isinstance(r.exc_info and r.exc_info[1], RuntimeError) for r in caplog.records)


# -- time limits ---------------------------------------------------------------------------


def test_slow_request_head_gets_408_and_is_closed():
    with LiveServer(hello_app, header_timeout=0.3) as live, raw(live.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
        reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 408 ")


def test_idle_keep_alive_connection_is_closed():
    with LiveServer(hello_app, keep_alive_timeout=0.3) as live, raw(live.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        buffered = bytearray()
        assert read_response(sock, buffered)[0] == 200
        assert sock.recv(100) == b""  # closed by the server, without a word
        live.wait_for(lambda s: s.connections == 0, "the idle connection to go")


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout():
    with LiveServer(hello_app, header_timeout=0.3) as live, raw(live.port) as sock:
        assert sock.recv(100) == b""


def test_a_stalled_body_is_cut_off():
    with LiveServer(hello_app, body_timeout=0.3) as live, raw(live.port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly a little")
        assert read_all(sock) == b""
        live.wait_for(lambda s: s.connections == 0, "the stalled connection to go")


def test_disconnect_is_reported_to_an_app_waiting_for_it():
    events = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        events.append(await receive())  # the (empty) body
        events.append(await receive())  # blocks until the client goes away
        done.set()

    done = __import__("threading").Event()
    with LiveServer(app, lifespan="off") as live:
        with raw(live.port) as sock:
            sock.sendall(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
            live.wait_for(lambda s: s.requests == 1, "the request")
        assert done.wait(5)
    assert events == [{"type": "http.request", "body": b"", "more_body": False}, {"type": "http.disconnect"}]


def test_a_response_sent_by_another_fiber_ends_the_wait_for_disconnect_and_pipelining_goes_on():
    ends = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await receive()  # the body

        async def respond():
            await poorio.sleep(0.05)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": scope["path"].encode()})

        async with poorio.Group() as group:
            group.spawn(respond)
            ends.append(await receive())  # waits, reading, until respond() has completed the response

    with LiveServer(app, lifespan="off") as live, raw(live.port) as sock:
        sock.sendall(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n")
        buffered = bytearray()
        assert [read_response(sock, buffered)[2] for _ in range(2)] == [b"/one", b"/two"]
    assert ends == [{"type": "http.disconnect"}] * 2


def test_send_after_the_client_left_raises_an_oserror():
    outcome = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for _ in range(10000):
                await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
                await poorio.sleep(0.001)
        except OSError as error:
            outcome.append(error)
        finished.set()

    finished = __import__("threading").Event()
    with LiveServer(app, lifespan="off") as live:
        with raw(live.port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.recv(1000)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # close = RST
        assert finished.wait(5)
    assert isinstance(outcome[0], poorio.http.ClientDisconnected)


# -- connection limit and shutdown ---------------------------------------------------------


def test_connections_beyond_the_limit_wait_in_the_backlog():
    with LiveServer(hello_app, max_connections=2) as live:
        with raw(live.port) as a, raw(live.port) as b, raw(live.port) as c:
            live.wait_for(lambda s: s.connections == 2, "two connections")
            c.sendall(b"GET /third HTTP/1.1\r\nHost: x\r\n\r\n")
            c.settimeout(0.3)
            with pytest.raises(socket.timeout):
                c.recv(100)  # not accepted yet: nobody reads it
            a.close()  # a slot frees up
            c.settimeout(10)
            assert read_response(c, bytearray())[2] == b"Hello, /third"
            b.sendall(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(b, bytearray())[2] == b"Hello, /second"


def test_graceful_shutdown_finishes_requests_in_flight_and_closes_idle_ones():
    live = LiveServer(hello_app).__enter__()
    try:
        busy, idle = socket.create_connection(("127.0.0.1", live.port), 10), socket.create_connection(("127.0.0.1", live.port), 10)
        idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(idle, bytearray())
        busy.sendall(b"GET /sleep?s=0.3 HTTP/1.1\r\nHost: x\r\n\r\n")
        live.wait_for(lambda s: s.requests == 2, "the slow request to start")
        live.server.shutdown()
        assert idle.recv(100) == b""  # closed at once
        status, headers, body = read_response(busy, bytearray())
        assert (status, body, headers["connection"]) == (200, b"slept", "close")
        assert busy.recv(100) == b""
        with pytest.raises(OSError):  # no longer accepting
            for _ in range(50):
                socket.create_connection(("127.0.0.1", live.port), 1).close()
                __import__("time").sleep(0.01)
    finally:
        busy.close()
        idle.close()
        live.stop()


def test_graceful_shutdown_cancels_what_outlives_the_deadline():
    cancelled = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        try:
            await poorio.sleep(60)
        except poorio.Cancelled:
            cancelled.append(scope["path"])
            raise

    with LiveServer(app, lifespan="off", graceful_timeout=0.2) as live, raw(live.port) as sock:
        sock.sendall(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
        live.wait_for(lambda s: s.requests == 1, "the request")
        live.stop()
        assert read_all(sock) == b""
    assert cancelled == ["/forever"]


# -- lifespan ------------------------------------------------------------------------------


def test_lifespan_startup_state_reaches_requests_and_shutdown_runs():
    log = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                log.append(message["type"])
                if message["type"] == "lifespan.startup":
                    scope["state"]["greeting"] = b"from startup"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["state"]["greeting"]})

    with LiveServer(app, lifespan="on") as live, raw(live.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock, bytearray())[2] == b"from startup"
        assert log == ["lifespan.startup"]
    assert log == ["lifespan.startup", "lifespan.shutdown"]


def test_failed_lifespan_startup_stops_the_server():
    async def app(scope, receive, send):
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    live = LiveServer(app)
    with pytest.raises(poorio.http.LifespanFailure, match="no database"):
        with live:
            pass


def test_app_without_lifespan_support_is_served_in_auto_mode():
    async def app(scope, receive, send):
        assert scope["type"] == "http", "only http here"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain"})

    with LiveServer(app) as live, raw(live.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock, bytearray())[2] == b"plain"


def test_serve_takes_a_listening_socket_handed_over():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    server = poorio.http.Server(hello_app, poorio.http.Config(handle_signals=False))
    thread = __import__("threading").Thread(target=poorio.run, args=(server.serve, sock))
    thread.start()
    try:
        with raw(port) as client:
            client.sendall(b"GET /handed HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(client, bytearray())[2] == b"Hello, /handed"
    finally:
        server.shutdown()
        thread.join(10)
    assert not thread.is_alive() and sock.fileno() == -1  # the server owned it, and closed it


def test_config_rejects_bad_settings():
    with pytest.raises(TypeError, match="unknown setting"):
        poorio.http.Config(max_body=1)
    with pytest.raises(ValueError, match="keep_alive_timeout"):
        poorio.http.Config(keep_alive_timeout=0)
    with pytest.raises(ValueError, match="root_path"):
        poorio.http.Config(root_path="api/")
    with pytest.raises(ValueError, match="max_header_bytes"):
        poorio.http.Config(max_header_bytes=100, max_request_line=200)
    config = poorio.http.Config(max_connections=5)
    assert config.connection_limit(1024) == 5 and poorio.http.Config().connection_limit(1024) == 1008
    assert config.replace(max_headers=7).max_headers == 7
