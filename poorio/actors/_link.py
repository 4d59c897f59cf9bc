"""Process actors: a fresh interpreter per actor, and the link -- framed messages over a socket -- to it.

``spawn_process`` starts ``python -c <bootstrap>`` (a fresh interpreter, as
``multiprocessing``'s *spawn* start method does, on every system) and hands
it one end of a ``socket.socketpair()``: by fd number (``pass_fds``, every
other fd stays close-on-exec) where ``facts.SOCKETS_PASS_BY_FD``, else as
``socket.share()`` data on the child's stdin (Windows).  Both ends are
poorio ``SocketStream``s, so a link is poorio's own IO path.

On the socket travel *frames*: a 4-byte big-endian length, a tag byte,
and the body::

    M <u8 depth> <depth x u32 path> <u32 number> <payload>   a message, routed by address
    B <codec (boot, args)>         parent -> child, first: what to run
    X <codec outcome>              child -> parent, last: how its main actor ended

A message's envelope is fixed binary (it is the hot path; its payload is
already an encoded message); the rare control frames are one ``codec``
message, so a frame is parsed as carefully as any message.  The reader
takes the socket's bytes in large chunks and parses every whole frame in
them.

Each side runs a reader fiber and a writer fiber; the writer drains the
link's ``Mailbox`` (bounded: senders wait when it is full), the reader
routes each message on -- into a local inbox or another link, waiting
while that is full, so back-pressure travels back over the socket.

Lifetimes.  The parent's reader ends when the child closes the socket (it
exited, crashed or was killed) or when the spawning actor's scheduler ends
and cancels it; either way it closes the link -- the child then sees EOF,
and a child that sees EOF cancels its main fiber and exits -- waits up to
``STOP_TIMEOUT`` for the child to exit, kills it if it has not, reaps it,
and records its outcome.  No orphan, no zombie.
"""

from __future__ import annotations

import os
import socket
import struct
import sys

from .._core.cancel import CancelScope, fail_after, move_on_after
from .._core import spawn
from ..errors import (
    ActorExitedError, ClosedResourceError, IncompleteReadError, MalformedMessageError, MessageTooLargeError,
)  # fmt: skip
from ..net import SocketStream
from ..ops import WOULD_BLOCK
from ..platform import facts
from ..process import open_process
from ..streams import blocking
from . import _node, codec
from .address import Address
from .mailbox import Mailbox

LINK_BUFFER = 64  # frames queued for a link's writer before senders wait
MAX_FRAME = codec.MAX_MESSAGE_SIZE + 65536  # a message plus its routing and boot data
_WRITE_BATCH = 256 * 1024  # bytes the writer gathers into one write_all
_READ_SIZE = 256 * 1024  # bytes the reader asks for at once (frames are parsed out of them)
_MESSAGE = 0x4D  # "M": the envelope of a message is fixed binary, not codec, for speed
_U32 = struct.Struct(">I")


def _frame(tag: str, *fields) -> bytes:
    """A control frame ("B" boot, "X" exit): its tag, then its fields as one codec message."""
    body = tag.encode() + codec.encode(fields, MAX_FRAME)
    return _U32.pack(len(body)) + body


def message_frame(address: Address, payload: bytes) -> bytes:
    """A message frame: ``M``, the address's path depth, path and number (u32 each), then the payload."""
    path = address.path
    head = struct.pack(f">IBB{len(path) + 1}I", 2 + 4 * (len(path) + 1) + len(payload), _MESSAGE, len(path),
                       *path, address.number)
    return head + payload


class Link:
    """This process's end of the socket to a neighbouring process (a child, or the parent)."""

    __slots__ = ("stream", "outbox", "path", "exit", "record")

    def __init__(self, stream: SocketStream, path: tuple, record=None) -> None:
        self.stream = stream
        self.outbox = Mailbox(LINK_BUFFER, name=f"link to process {path}")
        self.path = path  # the neighbour's path
        self.exit = None  # the outcome the child reported, once its "X" frame came
        self.record = record  # parent side: the child's main actor

    async def write_loop(self) -> None:
        """Write the outbox's frames, gathered in batches; a ``Completion`` in it is called once written.

        Ends quietly when the link closes or the peer is gone: the reader
        sees the end of the stream and closes the link, failing its senders.
        """
        outbox = self.outbox
        try:
            while True:
                batch = [await outbox.get()]
                size = len(batch[0]) if type(batch[0]) is bytes else 0
                while size < _WRITE_BATCH:
                    item = outbox.try_get()
                    if item is WOULD_BLOCK:
                        break
                    batch.append(item)
                    size += len(item) if type(item) is bytes else 0
                frames = [item for item in batch if type(item) is bytes]
                if frames:
                    await self.stream.write_all(frames[0] if len(frames) == 1 else b"".join(frames))
                for item in batch:
                    if type(item) is not bytes:
                        item.callback()  # a flush marker: everything before it is written
        except (ActorExitedError, ClosedResourceError, OSError):
            return

    async def read_frame(self):
        """One control frame as ``(tag, *fields)``, read exactly; None at a clean end of stream (the boot frame).

        Raises:
            MalformedMessageError: a frame that is too long or does not decode.
            OSError, ClosedResourceError: from the socket.
        """
        try:
            header = await self.stream.read_exactly(4)
        except IncompleteReadError as end:
            if end.partial:
                raise MalformedMessageError("the link ended inside a frame header") from None
            return None
        size = _frame_size(header, 0)
        try:
            body = await self.stream.read_exactly(size)
        except IncompleteReadError:
            raise MalformedMessageError("the link ended inside a frame") from None
        return _control(body, 0, size)

    async def read_loop(self) -> None:
        """Route incoming frames until the link ends (EOF: returns).

        Reads in large chunks and parses every whole frame in them: one
        syscall for a burst of small messages, not two per message.
        """
        buf = bytearray()
        stream = self.stream
        while True:
            chunk = await stream.read_some(_READ_SIZE)
            if not chunk:
                if buf:
                    raise MalformedMessageError("the link ended inside a frame")
                return
            buf += chunk
            pos = 0
            while len(buf) - pos >= 4:
                size = _frame_size(buf, pos)
                end = pos + 4 + size
                if end > len(buf):
                    break
                await self._dispatch(buf, pos + 4, end)
                pos = end
            if pos:
                del buf[:pos]  # once per chunk: parsing advanced an offset

    async def _dispatch(self, buf: bytearray, start: int, end: int) -> None:
        if buf[start] == _MESSAGE:
            if end - start < 6:
                raise MalformedMessageError("a message frame is truncated")
            depth = buf[start + 1]
            payload_at = start + 2 + 4 * (depth + 1)
            if payload_at > end:
                raise MalformedMessageError("a message frame's address runs past its end")
            steps = struct.unpack_from(f">{depth + 1}I", buf, start + 2)
            await _forward(Address(steps[:-1], steps[-1]), bytes(buf[payload_at:end]))
            return
        frame = _control(buf, start, end)
        if frame[0] == "X" and self.record is not None:
            self.exit = frame[1:]
        else:
            raise MalformedMessageError(f"unexpected frame {frame[0]!r} on the link to process {self.path}")

    async def flush(self, seconds: float) -> None:
        """Wait until every frame queued so far has been written (at most ``seconds``)."""
        from ..completion import Completion

        written = Completion()
        with fail_after(seconds):
            await self.outbox.put(written)
            await written

    def close(self) -> None:
        """Close the socket and fail the link's senders with ``ActorExitedError``."""
        path = self.path
        self.outbox.close(lambda: ActorExitedError(f"the process {path} has ended"))
        self.stream.close()


def _frame_size(buf, pos: int) -> int:
    (size,) = _U32.unpack_from(buf, pos)
    if not 1 <= size <= MAX_FRAME:
        raise MalformedMessageError(f"a frame of {size} bytes; frames hold 1 to {MAX_FRAME}")
    return size


def _control(buf, start: int, end: int) -> tuple:
    """A control frame's ``(tag, *fields)``."""
    tag = chr(buf[start])
    if tag not in ("B", "X"):
        raise MalformedMessageError(f"unknown frame tag {tag!r}")
    fields = codec.decode(bytes(buf[start + 1:end]), MAX_FRAME)  # a copy: no view may pin the reader's buffer
    if type(fields) is not tuple:
        raise MalformedMessageError("a control frame's fields are not a tuple")
    return (tag, *fields)


async def _forward(address: Address, payload: bytes) -> None:
    """Deliver or pass on a message that came over a link; one to an ended actor is dropped, with a warning."""
    try:
        box, item = _node.route(address, payload)
        await box.put(item)
    except ActorExitedError as error:
        import logging

        logging.getLogger("poorio").warning("a message was dropped: %s", error)


# -- the parent's side -------------------------------------------------------------------


def target_spec(target) -> tuple:
    """``(module, qualname, main_file)`` naming ``target`` so a fresh interpreter can import it."""
    if isinstance(target, str):
        module, sep, qualname = target.partition(":")
        if not sep or not module or not qualname:
            raise ValueError(f"a target name is 'module:function', not {target!r}")
        return module, qualname, None
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", "")
    if module is None or "<" in qualname:
        raise TypeError(
            f"a process actor's target must be importable by name (a module-level async function), not {target!r}"
        )
    if module in ("__main__", _MAIN):
        main = sys.modules[module]
        spec = getattr(main, "__spec__", None)
        if spec is not None and spec.name and module == "__main__":  # python -m package.module
            return spec.name, qualname, None
        path = getattr(main, "__file__", None)
        if path is None:
            raise TypeError(f"{target!r} lives in an interactive __main__: a fresh interpreter cannot import it")
        return _MAIN, qualname, os.path.abspath(path)
    return module, qualname, None


_MAIN = "__poorio_main__"  # what a child calls the parent's main script (its `if __name__ == "__main__"` stays off)


def spawn_process(target, args: bytes, inbox_size: int, sockets: tuple = ()) -> Address:
    """Start ``target`` in a fresh interpreter; the spawning scheduler serves its link.

    ``sockets`` are handed to the child too (a listener its workers share);
    it finds them in ``_node.node.inherited``.
    """
    module, qualname, main_file = target_spec(target)
    parent = _node.current_actor()
    node = _node.node
    index = node.new_child()
    path = node.path + (index,)
    address = Address(path, 1)
    mine, theirs = socket.socketpair()
    try:
        process, handed = _start(theirs, sockets)
    except BaseException:
        mine.close()
        raise
    finally:
        theirs.close()
    record = _node._Record(address, "process")
    record.process = process
    try:
        link = Link(SocketStream(mine), path, record)
        boot = {
            "module": module, "qualname": qualname, "main_file": main_file, "path": path,
            "parent": parent.address, "inbox_size": inbox_size, "sys_path": list(sys.path), "sockets": handed,
        }  # fmt: skip
        link.outbox.try_put(_frame("B", boot, args))  # the first frame: the outbox is empty
    except BaseException:
        mine.close()
        process.kill()
        raise
    with node.lock:
        node.children[index] = link
        node.records[address] = record
    spawn(_serve_child, link, name=f"link to process actor {address!r}")
    return Address(path, 1, record)


def _interpreter_flags() -> list:
    """The command-line flags that give a fresh interpreter this one's settings (as multiprocessing's spawn does).

    From the public ``sys.flags`` and ``sys.warnoptions``: -O, -B, -S, -I
    (or -E, -s), -b, -W and the -X modes they record; other -X options are
    not carried over.
    """
    flags = sys.flags
    args = ["-" + "O" * flags.optimize] if flags.optimize else []
    for name, letter in (("dont_write_bytecode", "B"), ("no_site", "S"), ("bytes_warning", "b")):
        if getattr(flags, name):
            args.append("-" + letter * getattr(flags, name))
    if flags.isolated:
        args.append("-I")
    else:
        if flags.ignore_environment:
            args.append("-E")
        if flags.no_user_site:
            args.append("-s")
    implied = {"default::BytesWarning", "error::BytesWarning"} if flags.bytes_warning else set()
    if getattr(flags, "dev_mode", False):
        implied.add("default")
        args += ["-X", "dev"]
    if getattr(flags, "utf8_mode", 0) == 1:
        args += ["-X", "utf8"]
    args += ["-W" + option for option in sys.warnoptions if option not in implied]
    return args


def _start(theirs: socket.socket, sockets: tuple) -> tuple:
    """The child interpreter, given ``theirs`` (and ``sockets``): its ``Process``, and how it finds ``sockets``."""
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    bootstrap = (
        f"import sys; sys.path.insert(0, {package_root!r}); "
        "from poorio.actors._child import main; main()"
    )
    flags = _interpreter_flags()
    if facts.SOCKETS_PASS_BY_FD:
        fd = theirs.fileno()
        handed = [sock.fileno() for sock in sockets]
        argv = [sys.executable, *flags, "-c", bootstrap, str(fd)]
        # open_process never suspends; driving it here keeps spawn() a plain call.
        return blocking(open_process(argv, pass_fds=(fd, *handed))), handed
    r, w = os.pipe()
    try:
        process = blocking(open_process([sys.executable, *flags, "-c", bootstrap, "share"], stdin=r))
        try:
            os.write(w, theirs.share(process.pid))
            handed = [sock.share(process.pid) for sock in sockets]
        except BaseException:
            process.kill()
            raise
    finally:
        os.close(r)
        os.close(w)
    return process, handed


async def _serve_child(link: Link) -> None:
    """Run a child's link until it ends; then close it, reap the child and record its outcome."""
    writer = spawn(link.write_loop, name=f"writer of {link.outbox.name}")
    error = None
    try:
        await link.read_loop()
    except (OSError, ClosedResourceError, MalformedMessageError, MessageTooLargeError) as failure:
        error = failure
    finally:
        with CancelScope(shield=True):
            with _node.node.lock:
                if _node.node.children.get(link.path[-1]) is link:
                    del _node.node.children[link.path[-1]]
            writer.cancel()
            link.close()
            process = link.record.process
            with move_on_after(_node.STOP_TIMEOUT):
                await process.wait()
            if process.returncode is None:
                try:
                    process.kill()
                except ProcessLookupError:
                    pass
                await process.wait()
            link.record.finish(_child_outcome(link, process.returncode, error))


def _child_outcome(link: Link, code: int, error) -> tuple:
    exit = link.exit
    if exit is not None and exit[0] in ("ok", "error"):
        if exit[0] == "ok" and len(exit) == 2 and type(exit[1]) is bytes:
            return tuple(exit)
        if exit[0] == "error" and len(exit) == 5:
            return tuple(exit[:4]) + (None,)  # it reported its own failure: the process did not die
    if code is not None and code < 0:
        why = f"its process was killed by signal {-code}"
    else:
        why = f"its process exited with status {code} before reporting how it ended"
    if error is not None:
        why += f" (the link failed: {error})"
    return ("error", "ProcessExited", why, "", code)
