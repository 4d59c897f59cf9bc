"""TLS over any poorio stream, through the stdlib ``ssl`` module's memory BIOs.

``await wrap_client(stream, server_hostname=...)`` and ``await
wrap_server(stream, context)`` run the handshake and return a
``TLSStream`` -- the ``poorio.streams`` interface again, so ``read_line``,
``write_all`` and friends work over TLS unchanged.  OpenSSL never touches
the socket: it reads ciphertext from one ``ssl.MemoryBIO`` and writes to
another, and this module moves bytes between those and the transport
stream with the transport's own ``read_some``/``write_all``.

Errors from TLS are ``ssl.SSLError`` (and its subclasses), unwrapped; a
peer that drops the connection without ``close_notify`` makes a read raise
``ssl.SSLEOFError``.  ``aclose()`` shuts down cleanly: it sends
``close_notify`` and waits for the peer's before closing the transport.

What this module does not do: renegotiation, session resumption policy,
ALPN or certificate choices -- those belong to the ``ssl.SSLContext`` you
pass in.  ``ssl`` is imported here and nowhere else in poorio.
"""

from __future__ import annotations

import ssl

from .errors import BusyResourceError, ClosedResourceError
from .streams import DEFAULT_READ_SIZE, Stream, byte_view, check_read_size, writable_view

__all__ = ["TLSStream", "wrap_client", "wrap_server"]

_CHUNK = 16384  # plaintext encrypted per write_some: one TLS record's worth, bounded BIO


class TLSStream(Stream):
    """A TLS session over a transport stream, itself a stream.

    One fiber may read while another writes.  Outgoing ciphertext goes out
    through one flushing fiber at a time; if it is cancelled part-way, the
    transport's write side is broken (see ``Stream.write_all``) and so is
    this stream's.
    """

    __slots__ = ("transport", "_obj", "_in", "_out", "_reading", "_flushing", "_closed")

    def __init__(self, transport: Stream, context: ssl.SSLContext, *, server_side: bool,
                 server_hostname: str | None = None) -> None:
        self._init_stream()
        self.transport = transport  # the stream carrying the ciphertext
        self._in = ssl.MemoryBIO()  # ciphertext from the peer, for OpenSSL to read
        self._out = ssl.MemoryBIO()  # ciphertext OpenSSL produced, for the peer
        self._obj = context.wrap_bio(self._in, self._out, server_side=server_side,
                                     server_hostname=server_hostname)
        self._reading = False
        self._flushing = False
        self._closed = False

    async def _drive(self, op, *args):
        """Call ``op(*args)`` until OpenSSL stops asking for more ciphertext; flush what it wrote.

        Raises:
            ssl.SSLError: from OpenSSL (after sending any alert it produced).
            ClosedResourceError, OSError, Cancelled: from the transport.
        """
        while True:
            try:
                result = op(*args)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                await self._flush_quietly()  # let the peer see OpenSSL's alert
                raise
            else:
                await self._flush()
                return result
            await self._flush()  # e.g. a handshake message that must go before the reply
            data = await self.transport.read_some(DEFAULT_READ_SIZE)
            if data:
                self._in.write(data)
            else:
                self._in.write_eof()  # OpenSSL then raises SSLEOFError or ends cleanly

    async def _flush(self) -> None:
        if self._flushing:
            return  # the fiber flushing now loops until the BIO is empty: it sends ours too
        out = self._out
        self._flushing = True
        try:
            while out.pending:
                await self.transport.write_all(out.read())
        finally:
            self._flushing = False

    async def _flush_quietly(self) -> None:
        try:
            await self._flush()
        except (OSError, ClosedResourceError):
            pass

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedResourceError("the TLS stream is closed")

    async def do_handshake(self) -> None:
        """Run the handshake (``wrap_client``/``wrap_server`` already did).

        Raises:
            ssl.SSLError: the handshake failed (``ssl.SSLCertVerificationError``...).
            ClosedResourceError, OSError, Cancelled: from the transport.
        """
        self._check_open()
        await self._drive(self._obj.do_handshake)

    async def read_some(self, max_bytes: int = DEFAULT_READ_SIZE) -> bytes:
        """Up to ``max_bytes`` of plaintext; ``b""`` once the peer sent ``close_notify``.

        Raises:
            ssl.SSLError: e.g. ``SSLEOFError`` when the transport ended without ``close_notify``.
            BusyResourceError: another fiber is reading.
            ClosedResourceError, OSError, Cancelled: from the transport.
        """
        max_bytes = check_read_size(max_bytes)
        if self._rbuf:
            return self._take(max_bytes)
        self._check_open()
        if self._reading:
            raise BusyResourceError("another fiber is reading this TLS stream")
        self._reading = True
        try:
            data = await self._drive(self._obj.read, max_bytes)
        except ssl.SSLZeroReturnError:
            return b""
        finally:
            self._reading = False
        if not data and self._in.eof:
            raise _ragged_eof()
        return data

    async def read_into(self, buffer) -> int:
        """Plaintext into ``buffer``; 0 once the peer sent ``close_notify``.

        Raises:
            as ``read_some``.
        """
        view = writable_view(buffer)
        if self._rbuf:
            n = min(len(view), len(self._rbuf))
            view[:n] = self._take(n)
            return n
        self._check_open()
        if self._reading:
            raise BusyResourceError("another fiber is reading this TLS stream")
        self._reading = True
        try:
            count = await self._drive(self._obj.read, len(view), view)
        except ssl.SSLZeroReturnError:
            return 0
        finally:
            self._reading = False
        if not count and self._in.eof:
            raise _ragged_eof()
        return count

    async def write_some(self, data) -> int:
        """Encrypt up to 16 KiB of ``data`` and send it; return how much was taken.

        Raises:
            ssl.SSLError: from OpenSSL.
            BrokenResourceError: an earlier ``write_all`` was interrupted part-way.
            ClosedResourceError, OSError, Cancelled: from the transport.
        """
        self._check_open()
        self._check_writable()
        view = byte_view(data)
        return await self._drive(self._obj.write, view[:_CHUNK])

    @property
    def server_hostname(self) -> str | None:
        """The name sent as SNI (client side) or received (server side, with an ``sni_callback``)."""
        return self._obj.server_hostname

    def version(self) -> str | None:
        """The negotiated protocol, e.g. ``"TLSv1.3"``."""
        return self._obj.version()

    def getpeercert(self, binary_form: bool = False):
        """The peer's certificate, as ``ssl.SSLObject.getpeercert`` returns it."""
        return self._obj.getpeercert(binary_form)

    @property
    def closed(self) -> bool:
        return self._closed

    async def unwrap(self) -> Stream:
        """Shut TLS down cleanly (``close_notify`` both ways) and hand back the transport.

        Raises:
            ssl.SSLError: the peer broke the shutdown (``SSLEOFError``...).
            ClosedResourceError, OSError, Cancelled: from the transport.
        """
        self._check_open()
        await self._drive(self._obj.unwrap)
        self._closed = True
        return self.transport

    async def aclose(self) -> None:
        """Send ``close_notify``, wait for the peer's, then close the transport.

        Whatever goes wrong on the way (the peer vanished, a cancellation), the
        transport is closed in the end.  Wrap it in ``move_on_after`` to bound
        the wait for a peer that never answers.
        """
        if self._closed:
            return
        try:
            await self.unwrap()
        except (ssl.SSLError, OSError, ClosedResourceError):
            pass  # the transport is closed below all the same
        finally:
            self._closed = True
            await self.transport.aclose()

    def close(self) -> None:
        """Close the transport at once, without ``close_notify`` (use ``aclose`` for that)."""
        self._closed = True
        self.transport.close()

    def __repr__(self) -> str:
        return f"<TLSStream {self._obj.version() or 'handshaking'} over {self.transport!r}>"


def _ragged_eof() -> ssl.SSLEOFError:
    # CPython's ssl raises SSLZeroReturnError at close_notify and SSLEOFError
    # when the transport ends without one; PyPy's returns b"" for both.  An
    # empty read after the transport's end went into the BIO is the second
    # case: say it the CPython way.
    return ssl.SSLEOFError(ssl.SSL_ERROR_EOF, "EOF occurred in violation of protocol")


async def wrap_client(transport: Stream, *, server_hostname: str | None = None,
                      context: ssl.SSLContext | None = None) -> TLSStream:
    """A client-side ``TLSStream`` over ``transport``, handshake done.

    ``server_hostname`` is sent as SNI and checked against the certificate;
    ``context`` defaults to ``ssl.create_default_context()`` (system CAs).
    On failure the transport is closed.

    Raises:
        ssl.SSLError: the handshake failed (``ssl.SSLCertVerificationError``...).
        OSError, ClosedResourceError, Cancelled: from the transport.
    """
    if context is None:
        context = ssl.create_default_context()
    return await _handshake(TLSStream(transport, context, server_side=False, server_hostname=server_hostname))


async def wrap_server(transport: Stream, context: ssl.SSLContext) -> TLSStream:
    """A server-side ``TLSStream`` over ``transport``, handshake done.

    ``context`` holds the certificate (``context.load_cert_chain``) and, for
    SNI, an ``sni_callback``.  On failure the transport is closed.

    Raises:
        ssl.SSLError: the handshake failed.
        OSError, ClosedResourceError, Cancelled: from the transport.
    """
    return await _handshake(TLSStream(transport, context, server_side=True))


async def _handshake(stream: TLSStream) -> TLSStream:
    try:
        await stream.do_handshake()
    except BaseException:
        stream.close()
        raise
    return stream
