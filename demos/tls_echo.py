"""A TLS echo server with a self-signed certificate made at run time by the ``openssl`` command.

    python3 demos/tls_echo.py             # port 0: the kernel picks one, printed at start
    python3 demos/tls_echo.py --selftest  # serve, talk to itself over TLS, exit

TLS here is ``poorio.tls``: OpenSSL (through the stdlib ``ssl`` module)
works on memory buffers, and poorio moves the ciphertext over an ordinary
TCP stream.  Without an ``openssl`` command there is no certificate: the
demo says so and exits without error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from poorio import net, tls  # noqa: E402 (after the path tweak, so it runs from a checkout)
from poorio import fail_after, move_on_after, Group, run  # noqa: E402


def make_certificate(where: str) -> tuple:
    """A self-signed certificate for localhost/127.0.0.1: (certfile, keyfile)."""
    certfile, keyfile = os.path.join(where, "cert.pem"), os.path.join(where, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", keyfile, "-out", certfile, "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return certfile, keyfile


async def echo(raw: net.SocketStream, context: ssl.SSLContext) -> None:
    try:
        stream = await tls.wrap_server(raw, context)
        while True:
            line = await stream.read_line(4096)
            if not line:
                break
            await stream.write_all(line)
        with move_on_after(5):  # a peer that never answers close_notify
            await stream.aclose()
        stream.close()
    except (ssl.SSLError, OSError) as error:
        print(f"client failed: {error}", file=sys.stderr)


async def serve(listener: net.Listener, group: Group, context: ssl.SSLContext) -> None:
    while True:
        group.spawn(echo, await listener.accept(), context)


async def selftest(port: int, certfile: str) -> None:
    raw = await net.connect_tcp("127.0.0.1", port)
    context = ssl.create_default_context(cafile=certfile)  # trust exactly our certificate
    stream = await tls.wrap_client(raw, server_hostname="localhost", context=context)
    async with stream:  # aclose: close_notify both ways
        for text in (b"hello over TLS\n", b"second line\n"):
            await stream.write_all(text)
            reply = await stream.read_line()
            assert reply == text, reply
            print(f"{stream.version()} echo: {reply.decode()}", end="")


async def main(port: int, test: bool, certfile: str, keyfile: str) -> int:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    async with await net.listen_tcp("127.0.0.1", port) as listener:
        print(f"TLS echo server listening on 127.0.0.1:{listener.local_address[1]}", flush=True)
        async with Group() as server:
            server.spawn(serve, listener, server, context)
            if test:
                with fail_after(20):
                    await selftest(listener.local_address[1], certfile)
                print("selftest: ok")
                server.cancel_scope.cancel()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--selftest", action="store_true", help="talk to the server over TLS, then exit")
    args = parser.parse_args()
    if shutil.which("openssl") is None:
        print("tls_echo: skipped -- no 'openssl' command to make a self-signed certificate with")
        sys.exit(0)
    with tempfile.TemporaryDirectory() as where:
        try:
            sys.exit(run(main, args.port, args.selftest, *make_certificate(where)))
        except KeyboardInterrupt:
            pass
