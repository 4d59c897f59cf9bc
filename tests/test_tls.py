"""TLS over poorio streams: poorio on both ends, the stdlib's blocking ssl, and openssl s_client.

The certificate is self-signed and made at run time by the ``openssl``
command; without it these tests are skipped.  Every case runs on every backend.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import threading

import pytest

from fiber_helpers import backend, run  # noqa: F401 (fixtures)
from poorio import fail_after, move_on_after, net, spawn, tls

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is needed to make a certificate")


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """(certificate, key) files for CN=localhost, also valid for 127.0.0.1."""
    where = tmp_path_factory.mktemp("tls")
    certfile, keyfile = str(where / "cert.pem"), str(where / "key.pem")
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", keyfile, "-out", certfile, "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return certfile, keyfile


def _server_context(cert, seen=None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    if seen is not None:
        context.sni_callback = lambda obj, name, ctx: seen.append(name)
    return context


def _client_context(cert) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cert[0])


async def _pair():
    """Two connected TCP streams (server side, client side)."""
    async with await net.listen_tcp("127.0.0.1", 0) as listener:
        client = await net.connect_tcp(*listener.local_address)
        return await listener.accept(), client


def test_poorio_to_poorio_megabytes_sni_and_clean_shutdown(backend, cert):
    data = os.urandom(1024) * 3 * 1024
    seen = []

    async def main():
        raw_server, raw_client = await _pair()

        async def server():
            stream = await tls.wrap_server(raw_server, _server_context(cert, seen))
            digest, total = hashlib.sha256(), 0
            line = await stream.read_line()
            while True:
                chunk = await stream.read_some()
                if not chunk:  # the client's close_notify
                    break
                digest.update(chunk)
                total += len(chunk)
            await stream.aclose()
            return line, total, digest.hexdigest()

        with fail_after(30):
            f = spawn(server)
            client = await tls.wrap_client(raw_client, server_hostname="localhost", context=_client_context(cert))
            version = client.version()
            await client.write_all(b"hello tls\n")
            await client.write_all(data)
            await client.aclose()  # sends close_notify, waits for the server's
            return version, client.closed, await f.join()

    version, closed, (line, total, digest) = run(main, backend=backend)
    assert version.startswith("TLS") and closed and seen == ["localhost"]
    assert (line, total, digest) == (b"hello tls\n", len(data), hashlib.sha256(data).hexdigest())


def test_untrusted_certificate_fails_with_ssl_error(backend, cert):
    async def main():
        raw_server, raw_client = await _pair()

        async def server():
            with pytest.raises((ssl.SSLError, OSError)):
                await tls.wrap_server(raw_server, _server_context(cert))
            return raw_server.closed

        with fail_after(10):
            f = spawn(server)
            with pytest.raises(ssl.SSLCertVerificationError):
                await tls.wrap_client(raw_client, server_hostname="localhost", context=ssl.create_default_context())
            return raw_client.closed, await f.join()

    assert run(main, backend=backend) == (True, True)


def test_wrong_hostname_fails_verification(backend, cert):
    async def main():
        raw_server, raw_client = await _pair()

        async def server():
            with pytest.raises((ssl.SSLError, OSError)):
                await tls.wrap_server(raw_server, _server_context(cert))

        with fail_after(10):
            f = spawn(server)
            with pytest.raises(ssl.SSLCertVerificationError):
                await tls.wrap_client(raw_client, server_hostname="example.org", context=_client_context(cert))
            await f.join()
            return raw_client.closed

    assert run(main, backend=backend) is True


def test_peer_vanishing_without_close_notify_is_ssl_eof(backend, cert):
    async def main():
        raw_server, raw_client = await _pair()

        async def server():
            stream = await tls.wrap_server(raw_server, _server_context(cert))
            await stream.write_all(b"bye")
            stream.close()  # the transport goes, no close_notify

        with fail_after(10):
            f = spawn(server)
            client = await tls.wrap_client(raw_client, server_hostname="localhost", context=_client_context(cert))
            async with client:
                first = await client.read_exactly(3)
                with pytest.raises(ssl.SSLEOFError):
                    await client.read_some()
            await f.join()
            return first

    assert run(main, backend=backend) == b"bye"


def test_stdlib_blocking_client_against_poorio_server(backend, cert):
    result = {}

    def client(port):
        with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
            with _client_context(cert).wrap_socket(raw, server_hostname="localhost") as sock:
                sock.sendall(b"ping from stdlib\n")
                result["reply"] = sock.recv(100)
                sock.unwrap()  # answers the server's close_notify with its own

    async def main():
        async with await net.listen_tcp("127.0.0.1", 0) as listener:
            peer = threading.Thread(target=client, args=(listener.local_address[1],), daemon=True)
            peer.start()
            with fail_after(20):
                stream = await tls.wrap_server(await listener.accept(), _server_context(cert))
                line = await stream.read_line()
                await stream.write_all(line.upper())
                await stream.aclose()
            return line, peer

    line, peer = run(main, backend=backend)
    peer.join(20)
    assert line == b"ping from stdlib\n" and result["reply"] == b"PING FROM STDLIB\n"


def test_openssl_s_client_against_poorio_server(backend, cert):
    async def main():
        async with await net.listen_tcp("127.0.0.1", 0) as listener:
            port = listener.local_address[1]
            proc = subprocess.Popen(
                [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                 "-CAfile", cert[0], "-verify_return_error", "-quiet"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            try:
                proc.stdin.write(b"hello from s_client\n")
                proc.stdin.flush()
                with fail_after(20):
                    stream = await tls.wrap_server(await listener.accept(), _server_context(cert))
                    line = await stream.read_line()
                    await stream.write_all(b"echo: " + line)
                    with move_on_after(5):
                        await stream.aclose()
                    stream.close()
                out, _ = proc.communicate(timeout=20)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
            return line, out

    line, out = run(main, backend=backend)
    assert line == b"hello from s_client\n" and b"echo: hello from s_client" in out
