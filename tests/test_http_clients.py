"""poorio.http against real clients and a real framework: a Starlette app, httpx and curl."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess

import pytest
from http_support import WAIT, LiveServer, hello_app

import poorio

httpx = pytest.importorskip("httpx", reason="httpx is a test extra: pip install -e '.[test]'")
starlette = pytest.importorskip("starlette", reason="starlette is a test extra: pip install -e '.[test]'")

from starlette.applications import Starlette  # noqa: E402
from starlette.background import BackgroundTask  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed (apt-get install curl)")


def starlette_app(events: list):
    """Routes, JSON, a streamed response, a background task and a lifespan, as a Starlette user writes them."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        events.append("startup")
        yield {"greeting": "hello from the lifespan"}
        events.append("shutdown")

    async def home(request: Request):
        return PlainTextResponse(request.state.greeting)

    async def item(request: Request):
        return JSONResponse({"id": int(request.path_params["item_id"]), "q": request.query_params.get("q")})

    async def create(request: Request):
        payload = await request.json()
        return JSONResponse({"received": payload, "size": len(json.dumps(payload))}, status_code=201)

    async def upload(request: Request):
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
        return JSONResponse({"size": size, "sha256": digest.hexdigest()})

    async def numbers(request: Request):
        async def generate():
            for i in range(int(request.query_params.get("n", "5"))):
                yield f"{i}\n"
                await poorio.sleep(0)  # fibers, not asyncio: a poorio await inside a Starlette app

        return StreamingResponse(generate(), media_type="text/plain")

    async def remember(request: Request):
        async def note(what):
            await poorio.sleep(0.01)
            events.append(what)

        return PlainTextResponse("noted", background=BackgroundTask(note, request.query_params["what"]))

    return Starlette(
        routes=[
            Route("/", home),
            Route("/items/{item_id:int}", item),
            Route("/items", create, methods=["POST"]),
            Route("/upload", upload, methods=["POST"]),
            Route("/numbers", numbers),
            Route("/remember", remember),
        ],
        lifespan=lifespan,
    )


def test_starlette_app_runs_unchanged():
    events = []
    with LiveServer(starlette_app(events), lifespan="on") as live:
        assert events == ["startup"]
        with httpx.Client(base_url=live.url, timeout=WAIT) as client:
            assert client.get("/").text == "hello from the lifespan"
            assert client.get("/items/42", params={"q": "x y"}).json() == {"id": 42, "q": "x y"}
            created = client.post("/items", json={"name": "widget", "tags": ["a", "b"]})
            assert created.status_code == 201 and created.json()["received"] == {"name": "widget", "tags": ["a", "b"]}
            assert client.get("/missing").status_code == 404
            assert client.delete("/items").status_code == 405
            with client.stream("GET", "/numbers", params={"n": 50}) as response:
                assert response.headers["transfer-encoding"] == "chunked"
                assert "".join(response.iter_text()) == "".join(f"{i}\n" for i in range(50))
            assert client.get("/remember", params={"what": "background ran"}).text == "noted"
            assert client.get("/").status_code == 200  # same connection: after the background task
        live.wait_for(lambda s: s.accepted == 1 and s.connections == 0, "httpx to keep one connection alive")
    assert events == ["startup", "background ran", "shutdown"]


def test_httpx_chunked_upload_and_large_download():
    payload = os.urandom(2 * 1024 * 1024)

    def pieces():
        for start in range(0, len(payload), 100_000):
            yield payload[start : start + 100_000]

    with LiveServer(starlette_app([]), lifespan="on") as live:
        with httpx.Client(base_url=live.url, timeout=WAIT) as client:
            uploaded = client.post("/upload", content=pieces())  # a generator: httpx sends it chunked
            assert uploaded.json() == {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    with LiveServer(hello_app) as live:
        with httpx.Client(base_url=live.url, timeout=WAIT) as client:
            echoed = client.post("/echo", content=payload)
            assert echoed.headers["content-length"] == str(len(payload)) and echoed.content == payload


@needs_curl
def test_curl_keep_alive_upload_and_100_continue(tmp_path):
    payload = os.urandom(1024 * 1024 + 3)
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    echoed = tmp_path / "echoed.bin"
    with LiveServer(hello_app) as live:
        # Two URLs in one curl: the second reuses the first's connection.
        out = subprocess.run(
            [CURL, "-sS", "-v", f"{live.url}/one", f"{live.url}/two"],
            capture_output=True, text=True, timeout=WAIT,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert out.stdout == "Hello, /oneHello, /two"
        assert "Re-using existing connection" in out.stderr or "Reusing existing connection" in out.stderr
        # A 1 MiB upload: curl asks for 100-continue by itself past 1 MiB; force it anyway.
        out = subprocess.run(
            [CURL, "-sS", "-v", "-H", "Expect: 100-continue", "--data-binary", f"@{source}", "-o", str(echoed),
             f"{live.url}/echo"],
            capture_output=True, text=True, timeout=WAIT,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "HTTP/1.1 100 Continue" in out.stderr
        assert echoed.read_bytes() == payload
        # A chunked upload.
        out = subprocess.run(
            [CURL, "-sS", "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{source}", "-o", str(echoed),
             f"{live.url}/echo"],
            capture_output=True, text=True, timeout=WAIT,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert echoed.read_bytes() == payload
        # HEAD
        out = subprocess.run([CURL, "-sS", "-I", f"{live.url}/head"], capture_output=True, text=True, timeout=WAIT)
        assert out.stdout.startswith("HTTP/1.1 200 OK") and "content-length: 12" in out.stdout.lower()  # len("Hello, /head")
