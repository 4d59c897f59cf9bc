"""CPU seconds an echo server spends per 1 KiB round trip: poorio (this checkout or another) against itself.

    python -m tests.stress.echo_cost [--poorio PATH ...] [--rounds N] [--python EXE]

Starts ``tests.stress.echo_server`` with each ``--poorio`` checkout first on
its path, drives 100 connections doing ping-pongs of 1 KiB from plain
blocking threads, and prints the server's user+system CPU microseconds per
round trip (from /proc), best of ``--repeat`` runs, the runs interleaved.
Used to check that a change to the read path does not make the echo
server slower (see docs/reliability.md).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading

from .soak import ROOT, Server


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(python: str, poorio_path: str, connections: int, rounds: int) -> float:
    server = Server(None, python=python, poorio_path=poorio_path)
    message = b"x" * 1024

    def client():
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(rounds):
                sock.sendall(message)
                got = 0
                while got < len(message):
                    got += len(sock.recv(65536))

    try:
        assert server.proc.poll() is None
        start = cpu_seconds(server.pid)
        threads = [threading.Thread(target=client) for _ in range(connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return (cpu_seconds(server.pid) - start) / (connections * rounds) * 1e6
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--poorio", action="append", help="a checkout to measure (default: this one)")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    paths = args.poorio or [ROOT]
    best = {path: float("inf") for path in paths}
    for _ in range(args.repeat):
        for path in paths:
            best[path] = min(best[path], one_run(args.python, path, args.connections, args.rounds))
    for path in paths:
        print(f"{path}: {best[path]:.1f} us of server CPU per 1 KiB round trip (best of {args.repeat})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
