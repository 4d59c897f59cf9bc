"""The live monitor: its snapshots, its event stream, who may see it, and a real browser watching it update."""

from __future__ import annotations

import gc
import json
import os
import shutil
import socket
import threading
import time

import pytest
from http_support import ROOT, WAIT, LiveServer, hello_app, read_all, read_response

import poorio
from poorio.http import Monitor, with_monitor

# The screenshot in the README: rewritten only when asked for
# (POORIO_SCREENSHOT=1), so a test run leaves the checkout as it was.
DOCS_SCREENSHOT = os.path.join(ROOT, "docs", "monitor.png")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def read_events(sock: socket.socket, count: int) -> list:
    """The first ``count`` snapshots of an event stream, parsed; the chunked framing is skipped over."""
    data = b""
    events = []
    while len(events) < count:
        chunk = sock.recv(65536)
        assert chunk, "the stream ended early"
        data += chunk
        for line in data.split(b"\n"):
            if line.startswith(b"data: ") and line.endswith(b"}"):
                events.append(json.loads(line[6:]))
        if len(events) < count:
            events = []
    return events[:count]


def test_snapshot_lists_the_server_fibers_and_counts():
    with LiveServer(with_monitor(hello_app)) as live:
        with socket.create_connection(("127.0.0.1", live.port), WAIT) as sock:
            sock.sendall(b"GET /sleep?s=0.3 HTTP/1.1\r\nHost: x\r\n\r\n")
            live.wait_for(lambda s: s.requests == 1, "the slow request")
            with socket.create_connection(("127.0.0.1", live.port), WAIT) as probe:
                probe.sendall(b"GET /_poorio/snapshot HTTP/1.1\r\nHost: x\r\n\r\n")
                status, headers, body = read_response(probe, bytearray())
            assert read_response(sock, bytearray())[2] == b"slept"
    assert status == 200 and headers["content-type"] == "application/json"
    snap = json.loads(body)
    sleeper = [f for f in snap["fibers"] if f["name"].startswith("http 127.0.0.1:") and (f["waiting"] or "").startswith("sleep")]
    assert len(sleeper) == 1 and sleeper[0]["state"] == "waiting"
    assert 0 <= sleeper[0]["for"] < 1
    running = [f for f in snap["fibers"] if f["state"] == "running"]
    assert len(running) == 1 and running[0]["waiting"] is None  # the fiber taking the snapshot
    assert snap["fibers_total"] == len(snap["fibers"]) == sum(snap["states"].values())
    assert snap["server"]["connections"] == 2 and snap["server"]["requests"] == 2
    # watched: at least the listener and the stop socket
    assert snap["scheduler"]["fds"] >= 2 and snap["scheduler"]["capacity"] >= snap["scheduler"]["fds"]
    assert snap["rates"] is None  # one snapshot alone has no rates


def test_event_stream_pushes_snapshots_with_rates_and_ends_at_shutdown():
    with LiveServer(with_monitor(hello_app, interval=0.1)) as live:
        sock = socket.create_connection(("127.0.0.1", live.port), WAIT)
        try:
            sock.sendall(b"GET /_poorio/events HTTP/1.1\r\nHost: x\r\n\r\n")
            first, second, third = read_events(sock, 3)
            assert first["rates"] is None and set(second["rates"]) == {"switches", "polls", "delivered", "requests"}
            assert third["counters"]["switches"] > first["counters"]["switches"]
            assert third["clock"] - first["clock"] >= 0.15
            live.stop()  # the stream ends by itself: shutdown does not wait for the graceful timeout
            assert read_all(sock).endswith(b"0\r\n\r\n")
        finally:
            sock.close()


def run_monitor(scope: dict, monitor: Monitor) -> list:
    """Call the monitor app directly in a fiber; the messages it sent."""
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    async def main():
        await monitor(scope, receive, send)

    poorio.run(main)
    return sent


@pytest.mark.parametrize("client,public,status", [
    (("203.0.113.9", 4000), False, 404), (("203.0.113.9", 4000), True, 200), (("127.0.0.1", 4000), False, 200),
    (("::1", 4000, 0, 0), False, 200), (None, False, 200),
])  # fmt: skip
def test_only_this_machine_sees_the_monitor_unless_public(client, public, status):
    scope = {"type": "http", "path": "/_poorio/snapshot", "root_path": "/_poorio", "client": client, "headers": []}
    sent = run_monitor(scope, Monitor(public=public))
    assert sent[0]["status"] == status


def test_page_is_served_and_the_bare_prefix_redirects():
    page = run_monitor({"type": "http", "path": "/_poorio/", "root_path": "/_poorio", "client": None}, Monitor())
    assert page[0]["status"] == 200 and b"new EventSource(\"events\")" in page[1]["body"]
    bare = run_monitor({"type": "http", "path": "/_poorio", "root_path": "/_poorio", "client": None}, Monitor())
    assert bare[0]["status"] == 307 and (b"location", b"/_poorio/") in bare[0]["headers"]


# -- a real browser ------------------------------------------------------------------------


def table_rows(driver) -> list:
    """The fiber table's rows as text, read in one step (the page replaces the table at every update)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#fiber-table tbody tr')).map(r => r.innerText)"
    )


selenium = pytest.importorskip("selenium", reason="selenium is a test extra: pip install -e '.[test]'")


@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                    reason="headless Chromium needs Debian's chromium and chromium-driver (apt-get install)")  # fmt: skip
def test_browser_watches_the_fiber_table_update(tmp_path):
    screenshot = DOCS_SCREENSHOT if os.environ.get("POORIO_SCREENSHOT") else str(tmp_path / "monitor.png")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,1000", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(flag)
    stop_load = threading.Event()

    def load(port: int) -> None:  # a keep-alive client making requests, for the rates
        with socket.create_connection(("127.0.0.1", port), WAIT) as sock:
            buffered = bytearray()
            while not stop_load.is_set():
                sock.sendall(b"GET /load HTTP/1.1\r\nHost: x\r\n\r\n")
                read_response(sock, buffered)
                time.sleep(0.002)

    with LiveServer(with_monitor(hello_app, interval=0.25)) as live:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        loaders = [threading.Thread(target=load, args=(live.port,)) for _ in range(2)]
        sleepers = []
        try:
            driver.get(f"{live.url}/_poorio/")
            wait = WebDriverWait(driver, WAIT, poll_frequency=0.05)
            wait.until(lambda d: int(d.find_element(By.TAG_NAME, "body").get_attribute("data-updates")) >= 1)
            before = len(table_rows(driver))
            for thread in loaders:
                thread.start()
            for i in range(3):  # requests that stay in flight: their fibers wait on a sleep
                sock = socket.create_connection(("127.0.0.1", live.port), WAIT)
                sock.sendall(b"GET /sleep?s=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (3 + i))
                sleepers.append(sock)

            def sleeping_rows(d):
                return [row for row in table_rows(d) if "sleep (" in row and "http 127.0.0.1:" in row]

            wait.until(lambda d: len(sleeping_rows(d)) == 3)
            wait.until(lambda d: d.find_element(By.ID, "rate-requests").text not in ("\u2013", "0"))
            time.sleep(2.5)  # ten more updates, for the charts in the picture
            assert len(table_rows(driver)) >= before + 5  # 3 sleepers and 2 keep-alive clients joined the table
            assert all("waiting" in row for row in sleeping_rows(driver))
            assert int(driver.find_element(By.ID, "connections").text) >= 6
            assert driver.find_element(By.ID, "status").text == "live"
            assert driver.save_screenshot(screenshot)
        finally:
            stop_load.set()
            for thread in loaders:
                if thread.is_alive():
                    thread.join(WAIT)
            for sock in sleepers:
                sock.close()
            driver.quit()
            # PyPy lets go of selenium's pooled connection to chromedriver only
            # when a collection finds it (the fd check afterwards runs one).
            del driver
            gc.collect()
    with open(screenshot, "rb") as picture:
        assert picture.read(8) == b"\x89PNG\r\n\x1a\n"
