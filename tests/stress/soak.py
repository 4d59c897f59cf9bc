"""The soak: thousands of connections held at once, then churn with faults, against an echo server child.

    python -m tests.stress.soak --minutes 10 [--connections 5000] [--backend poll] [--selectors]

Phase one opens ``--connections`` connections at once, echoes a small
message on each while all are open, then closes them.  Phase two churns for
the rest of the time: ``--concurrency`` clients at a time, each one of

* ``echo`` -- 1 to 6 messages of 1 B to 1 MiB (mostly small), each checked
  byte for byte and by sha256 as it comes back, then a half-close, and the
  server's half-close read;
* ``reset`` -- part of a message, then an abortive close (RST);
* ``mute`` -- sends until the server stops reading (it never reads the
  echo), then resets: the server must stay bounded in memory;
* ``storm`` -- connects and closes at once, in bursts.

Meanwhile a thread sends the server ``SIGUSR1`` about a thousand times a
second.  At the end it waits for the server's fds to come back to where
they started, stops it and prints one summary: duration, connections,
bytes, faults injected, errors, fds before/after, peak RSS.  The client is
the stdlib's ``selectors``: an oracle independent of poorio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter, deque

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POOL_SIZE = 2 << 20  # random bytes messages are cut from
MiB = 1 << 20


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards ``wanted`` (never past the hard limit); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def proc_status(pid: int) -> dict:
    """VmHWM (peak RSS) and VmRSS of ``pid`` in bytes, and its open fds (Linux /proc)."""
    out = {"peak_rss": -1, "rss": -1, "fds": -1}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    key = "peak_rss" if line.startswith("VmHWM") else "rss"
                    out[key] = int(line.split()[1]) * 1024
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        pass
    return out


class Server:
    """The echo server child: started, watched, signalled, stopped."""

    def __init__(self, backend: str | None, selectors_server: bool = False, python: str = sys.executable,
                 capacity: int | None = None, fd_limit: int | None = None, poorio_path: str = ROOT) -> None:
        env = dict(os.environ)
        # poorio from poorio_path (another checkout, to compare), this suite from ROOT.
        env["PYTHONPATH"] = os.pathsep.join([poorio_path, ROOT, env.get("PYTHONPATH", "")])
        if backend:
            env["POORIO_BACKEND"] = backend
        cmd = [python, "-m", "tests.stress.echo_server"]
        if selectors_server:
            cmd.append("--selectors")
        if capacity:
            cmd += ["--capacity", str(capacity)]

        def limit():  # the child's own fd limit (inherited otherwise)
            if fd_limit:
                hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
                soft = fd_limit if hard == resource.RLIM_INFINITY else min(fd_limit, hard)
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

        self.proc = subprocess.Popen(cmd, cwd=poorio_path, env=env, stdout=subprocess.PIPE, text=True, preexec_fn=limit)
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"the echo server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.pid = self.proc.pid

    def status(self) -> dict:
        return proc_status(self.pid)

    def stop(self, timeout: float = 30) -> dict:
        """SIGTERM, then its JSON report (with ``exit`` and ``peak_rss``)."""
        peak = self.status()["peak_rss"]
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        lines = [line for line in out.splitlines() if line.startswith("{")]
        report = json.loads(lines[-1]) if lines else {"errors": ["no report: the server died"]}
        report["exit"] = self.proc.returncode
        report["peak_rss"] = peak
        return report


class Conn:
    """One client connection and its script."""

    __slots__ = ("sock", "kind", "messages", "outgoing", "expect", "sent_hash", "recv_hash", "out_left",
                 "received", "sent", "state", "deadline", "stamp")

    def __init__(self, sock, kind: str, messages: list) -> None:
        self.sock = sock
        self.kind = kind
        self.messages = deque(messages)  # memoryviews still to send
        self.outgoing = None  # the message being sent, and how far
        self.out_left = 0
        self.expect = deque()  # memoryviews sent, not yet echoed
        self.sent_hash = hashlib.sha256()
        self.recv_hash = hashlib.sha256()
        self.received = 0
        self.sent = 0
        self.state = "connecting"
        self.deadline = 0.0
        self.stamp = 0


class Load:
    """The selectors-driven client side of the soak."""

    def __init__(self, port: int, seed: int) -> None:
        self.port = port
        self.rng = random.Random(seed)
        self.pool = memoryview(random.Random(seed).randbytes(POOL_SIZE) if hasattr(random.Random, "randbytes")
                               else os.urandom(POOL_SIZE))
        self.sel = selectors.DefaultSelector()
        self.conns = set()
        self.stats = Counter()
        self.errors = []

    # -- making connections ---------------------------------------------------------

    def message(self, small: bool = False) -> memoryview:
        rng = self.rng
        if small:
            size = rng.randint(1, 4096)
        else:  # mostly small, sometimes up to 1 MiB
            size = int(2 ** rng.uniform(0, 20))
        start = rng.randrange(0, POOL_SIZE - size)
        return self.pool[start : start + size]

    def open(self, kind: str, messages: list):
        sock = socket.socket()
        sock.setblocking(False)
        err = sock.connect_ex(("127.0.0.1", self.port))
        if err not in (0, 115, 11):  # EINPROGRESS, EAGAIN
            sock.close()
            self.fail(f"connect: {os.strerror(err)}")
            return None
        conn = Conn(sock, kind, messages)
        self.sel.register(sock, selectors.EVENT_WRITE, conn)
        self.conns.add(conn)
        self.stats["connections"] += 1
        return conn

    def open_random(self) -> None:
        roll = self.rng.random()
        if roll < 0.70:
            self.open("echo", [self.message() for _ in range(self.rng.randint(1, 6))])
        elif roll < 0.82:
            self.open("reset", [self.message()])
        elif roll < 0.90:
            self.open("mute", [])
        else:
            for _ in range(self.rng.randint(5, 40)):
                self.open("storm", [])

    def fail(self, what: str) -> None:
        self.stats["errors"] += 1
        if len(self.errors) < 20:
            self.errors.append(what)

    # -- the state machine ----------------------------------------------------------------

    def finish(self, conn: Conn, reset: bool = False) -> None:
        self.sel.unregister(conn.sock)
        self.conns.discard(conn)
        if reset:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.sock.close()

    def connected(self, conn: Conn) -> None:
        err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.fail(f"connect: {os.strerror(err)}")
            self.finish(conn)
            return
        if conn.kind == "storm":
            self.stats["fault_storm"] += 1
            self.finish(conn)
            return
        conn.state = "talking"
        conn.deadline = time.monotonic() + 0.2  # for mute: how long sends may stall before it gives up
        self.sel.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def send(self, conn: Conn) -> None:
        sock = conn.sock
        if conn.kind == "mute":
            try:
                n = sock.send(self.pool[: 256 * 1024])
                conn.sent += n
                self.stats["mute_bytes"] += n
                conn.deadline = time.monotonic() + 0.2
            except BlockingIOError:
                pass
            return
        if conn.outgoing is None:
            if conn.kind == "reset" and conn.sent:  # its message went out whole (a tiny one): reset now
                self.stats["fault_reset"] += 1
                self.finish(conn, reset=True)
                return
            if not conn.messages:
                if conn.kind == "echo" and conn.state == "talking":
                    sock.shutdown(socket.SHUT_WR)  # half-close: the server must finish the echo, then close
                    conn.state = "draining"
                    self.stats["half_closes"] += 1
                self.sel.modify(sock, selectors.EVENT_READ, conn)
                return
            conn.outgoing = conn.messages.popleft()
            conn.out_left = len(conn.outgoing)
        view = conn.outgoing
        start = len(view) - conn.out_left
        stop = start + 262144
        if conn.kind == "reset":  # half a message, then an abortive close mid-stream
            half = max(1, len(view) // 2)
            if start >= half:
                self.stats["fault_reset"] += 1
                self.finish(conn, reset=True)
                return
            stop = min(stop, half)
        n = sock.send(view[start:stop])
        conn.sent_hash.update(view[start : start + n])
        conn.expect.append(view[start : start + n])
        conn.out_left -= n
        conn.sent += n
        if not conn.out_left:
            conn.outgoing = None

    def recv(self, conn: Conn) -> None:
        data = conn.sock.recv(262144)
        if not data:
            if conn.kind == "echo" and conn.state == "draining" and not conn.expect:
                if conn.sent_hash.digest() != conn.recv_hash.digest():
                    self.fail("sha256 of the echo differs from what was sent")
                self.stats["echoes_ok"] += 1
            else:
                self.fail(f"{conn.kind} connection ended early ({conn.received} of {conn.sent} bytes echoed)")
            self.finish(conn)
            return
        conn.recv_hash.update(data)
        conn.received += len(data)
        self.stats["bytes"] += len(data)
        view = memoryview(data)
        while view:
            if not conn.expect:
                self.fail("the server sent bytes nobody sent")
                self.finish(conn)
                return
            want = conn.expect[0]
            n = min(len(want), len(view))
            if want[:n] != view[:n]:
                self.fail("echoed bytes differ from the bytes sent")
                self.finish(conn)
                return
            view = view[n:]
            if n == len(want):
                conn.expect.popleft()
            else:
                conn.expect[0] = want[n:]

    def step(self, timeout: float) -> None:
        for key, events in self.sel.select(timeout):
            conn = key.data
            if conn not in self.conns:
                continue
            try:
                if conn.state == "connecting":
                    self.connected(conn)
                    continue
                if events & selectors.EVENT_READ:
                    if conn.kind == "mute":
                        pass  # never reads: that is the point
                    else:
                        self.recv(conn)
                if conn in self.conns and events & selectors.EVENT_WRITE:
                    self.send(conn)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as error:
                if conn.kind in ("reset", "mute", "storm"):
                    self.finish(conn)
                else:
                    self.fail(f"{conn.kind}: {error!r}")
                    self.finish(conn)
        now = time.monotonic()
        for conn in [c for c in self.conns if c.kind == "mute" and c.state == "talking" and now > c.deadline]:
            self.stats["fault_mute"] += 1  # the server stopped reading: bounded, as it should be
            self.finish(conn, reset=True)

    # -- the phases ------------------------------------------------------------------------

    def hold(self, count: int, patience: float) -> int:
        """Open ``count`` connections, echo a small message on each while all are open; how many were open at once."""
        for _ in range(count):
            self.open("echo", [self.message(small=True)])
        deadline = time.monotonic() + patience
        # Hold: keep every connection open until each has had its echo back, then close them all.
        while time.monotonic() < deadline:
            pending = [c for c in self.conns if c.state != "talking" or c.expect or c.messages or c.outgoing]
            if not pending:
                break
            for conn in self.conns:
                if conn.state == "talking" and not conn.messages and conn.outgoing is None:
                    self.sel.modify(conn.sock, selectors.EVENT_READ, conn)
            self.step(0.5)
        held = sum(1 for c in self.conns if c.state == "talking")
        for conn in list(self.conns):
            if conn.state == "talking":
                conn.sock.shutdown(socket.SHUT_WR)
                conn.state = "draining"
                self.sel.modify(conn.sock, selectors.EVENT_READ, conn)
        self.drain(patience)
        return held

    def churn(self, seconds: float, concurrency: int) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            while len(self.conns) < concurrency:
                self.open_random()
            self.step(0.05)

    def drain(self, patience: float) -> None:
        deadline = time.monotonic() + patience
        while self.conns and time.monotonic() < deadline:
            self.step(0.1)
        for conn in list(self.conns):
            self.fail(f"{conn.kind} connection still open at the end ({conn.state})")
            self.finish(conn)


def signaller(pid: int, rate: float, stop: threading.Event, sent: list) -> None:
    """Send ``SIGUSR1`` to ``pid`` about ``rate`` times a second until ``stop``."""
    pause = 1.0 / rate
    while not stop.is_set():
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            return
        sent[0] += 1
        time.sleep(pause)


def soak(seconds: float, connections: int = 5000, concurrency: int = 200, backend: str | None = None,
         selectors_server: bool = False, seed: int = 1, signal_rate: float = 1000.0, python: str = sys.executable) -> dict:
    """Run the soak against a fresh server child; return its summary (see the module docstring)."""
    raise_fd_limit(connections + 2 * concurrency + 1000)
    started = time.monotonic()
    server = Server(backend, selectors_server, python, fd_limit=connections + 40 * concurrency + 1000)
    load = Load(server.port, seed)
    stop = threading.Event()
    sent = [0]
    try:
        fds_before = server.status()["fds"]
        thread = threading.Thread(target=signaller, args=(server.pid, signal_rate, stop, sent), daemon=True)
        thread.start()
        held = load.hold(connections, patience=max(60.0, seconds))
        load.churn(max(0.0, seconds - (time.monotonic() - started)), concurrency)
        load.drain(60.0)
        stop.set()
        thread.join()
        deadline = time.monotonic() + 30  # the server closes its ends once it has seen ours go
        while server.status()["fds"] > fds_before and time.monotonic() < deadline:
            time.sleep(0.05)
        fds_after = server.status()["fds"]
    finally:
        stop.set()
        report = server.stop()
        load.sel.close()
    stats = load.stats
    errors = load.errors + [f"server: {e}" for e in report.get("errors", [])]
    if report.get("exit") != 0:
        errors.append(f"server exit status {report.get('exit')}")
    return {
        "server": report.get("server"),
        "backend": report.get("backend"),
        "python": python,
        "duration_s": round(time.monotonic() - started, 1),
        "held_at_once": held,
        "connections": stats["connections"],
        "echoes_verified": stats["echoes_ok"],
        "bytes_echoed": stats["bytes"],
        "faults": {
            "resets": stats["fault_reset"], "never_reading": stats["fault_mute"], "storm_connects": stats["fault_storm"],
            "half_closes": stats["half_closes"], "signals_sent": sent[0], "signals_seen": report.get("signals"),
        },
        "errors": stats["errors"] + len(report.get("errors", [])) + (report.get("exit") != 0),
        "error_samples": errors[:10],
        "server_fds_before": fds_before,
        "server_fds_after": fds_after,
        "server_peak_rss_mb": round(report["peak_rss"] / MiB, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=5000, help="held at once in phase one")
    parser.add_argument("--concurrency", type=int, default=200, help="clients at a time while churning")
    parser.add_argument("--backend", default=None, help="the server's POORIO_BACKEND")
    parser.add_argument("--selectors", action="store_true", help="drive the stdlib-selectors server instead")
    parser.add_argument("--server-python", default=sys.executable, help="the interpreter that runs the server")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    summary = soak(args.minutes * 60, args.connections, args.concurrency, args.backend, args.selectors,
                   args.seed, python=args.server_python)
    for key, value in summary.items():
        print(f"{key + ':':20} {value}")
    ok = summary["errors"] == 0 and summary["server_fds_after"] == summary["server_fds_before"]
    print("verdict:             " + ("nothing lost, nothing leaked" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
