"""The actor message codec: plain data and addresses to compact bytes and back; never pickle, never code.

An actor message is *copied*: the sender encodes it, the receiver decodes a
fresh object graph, so no two actors ever share a mutable object -- whether
they run in two threads or two processes.  Only plain data is allowed:
``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, and ``list``,
``tuple`` and ``dict`` of them, and actor ``Address``es.  Exact types only:
a subclass (an ``IntEnum``, a ``namedtuple``, an ``OrderedDict``) would come
back as its base class, so it is refused rather than silently changed.

The format: each value is one tag byte and its payload, big-endian::

    N T F                  None, True, False
    i <int64>              an int that fits 64 bits
    I <u32 n> <n bytes>    a larger int, two's complement
    f <float64>            IEEE 754 double
    s <u32 n> <n bytes>    str, UTF-8 (lone surrogates pass through)
    b <u32 n> <n bytes>    bytes
    l / t <u32 n> <items>  list / tuple of n values
    d <u32 n> <pairs>      dict of n key, value pairs
    A <u8 d> <d x u32> <u32>   an Address: its process path and number

Decoding is written for hostile input: every length is checked against the
bytes that remain before anything is sliced or allocated, nesting is
bounded by ``MAX_DEPTH``, the whole message by ``MAX_MESSAGE_SIZE``, an
unknown tag, a bad UTF-8 sequence, an unhashable dict key or trailing bytes
raise ``MalformedMessageError`` -- and the decoder builds only the plain
types above, so nothing it reads can make it run code.

What this module does not do: framing (see ``poorio.actors._link``),
compression, or schema checks -- a message is data, what it means is the
receiver's business.
"""

from __future__ import annotations

import struct

from ..errors import MalformedMessageError, MessageTooLargeError
from .address import Address

__all__ = ["encode", "decode", "MAX_MESSAGE_SIZE", "MAX_DEPTH"]

#: The largest encoded message, in bytes.  Inboxes hold a bounded number of
#: messages, so this bounds their memory too; send large data in pieces.
MAX_MESSAGE_SIZE = 1 << 20
#: How deeply lists, tuples and dicts may nest.
MAX_DEPTH = 64

_I64 = struct.Struct(">q")
_F64 = struct.Struct(">d")
_U32 = struct.Struct(">I")
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


def encode(message, limit: int = MAX_MESSAGE_SIZE) -> bytes:
    """The bytes of ``message``; it must be plain data and addresses.

    Raises:
        TypeError: a value of a type that cannot be sent (named in the message).
        ValueError: nesting deeper than ``MAX_DEPTH`` (or a container that contains itself).
        MessageTooLargeError: the encoding would exceed ``limit`` bytes.
    """
    out = bytearray()
    _encode(message, out, 0, limit)
    if len(out) > limit:
        raise MessageTooLargeError(f"the message encodes to {len(out)} bytes; the limit is {limit}")
    return bytes(out)


def _encode(value, out: bytearray, depth: int, limit: int) -> None:
    if len(out) > limit:  # checked per value, so a huge container fails early, not at the end
        raise MessageTooLargeError(f"the message encodes to more than {limit} bytes (the limit)")
    kind = type(value)
    if value is None:
        out += b"N"
    elif kind is bool:
        out += b"T" if value else b"F"
    elif kind is int:
        if _I64_MIN <= value <= _I64_MAX:
            out += b"i"
            out += _I64.pack(value)
        else:
            size = (value.bit_length() + 8) // 8  # room for the sign bit
            _check_room(out, 5 + size, limit)
            out += b"I"
            out += _U32.pack(size)
            out += value.to_bytes(size, "big", signed=True)
    elif kind is float:
        out += b"f"
        out += _F64.pack(value)
    elif kind is str:
        data = value.encode("utf-8", "surrogatepass")
        _check_room(out, 5 + len(data), limit)
        out += b"s"
        out += _U32.pack(len(data))
        out += data
    elif kind is bytes:
        _check_room(out, 5 + len(value), limit)
        out += b"b"
        out += _U32.pack(len(value))
        out += value
    elif kind is list or kind is tuple or kind is dict:
        if depth >= MAX_DEPTH:
            raise ValueError(f"the message nests deeper than {MAX_DEPTH} levels (or contains itself)")
        out += b"l" if kind is list else b"t" if kind is tuple else b"d"
        out += _U32.pack(len(value))
        if kind is dict:
            for key, item in value.items():
                _encode(key, out, depth + 1, limit)
                _encode(item, out, depth + 1, limit)
        else:
            for item in value:
                _encode(item, out, depth + 1, limit)
    elif kind is Address:
        path = value.path
        out += b"A"
        out.append(len(path))
        for step in path:
            out += _U32.pack(step)
        out += _U32.pack(value.number)
    else:
        raise TypeError(
            f"an actor message cannot carry {kind.__module__}.{kind.__qualname__} ({value!r:.60}); "
            "send None, bool, int, float, str, bytes, lists, tuples and dicts of them, or addresses"
        )


def _check_room(out: bytearray, more: int, limit: int) -> None:
    if len(out) + more > limit:
        raise MessageTooLargeError(f"the message encodes to more than {limit} bytes (the limit)")


def decode(data, limit: int = MAX_MESSAGE_SIZE):
    """The message ``data`` encodes: a fresh object graph of plain data and addresses.

    Raises:
        MalformedMessageError: ``data`` is not one well-formed message (see the module docstring).
        MessageTooLargeError: ``data`` is longer than ``limit`` bytes.
    """
    view = memoryview(data)
    if len(view) > limit:
        raise MessageTooLargeError(f"a message of {len(view)} bytes; the limit is {limit}")
    try:
        value, end = _decode(view, 0, 0)
    except (struct.error, IndexError):
        raise MalformedMessageError("the message is truncated") from None
    if end != len(view):
        raise MalformedMessageError(f"{len(view) - end} bytes follow the message")
    return value


def _length(view: memoryview, pos: int, each: int = 1) -> tuple:
    """A u32 count at ``pos`` whose items (``each`` bytes at least) fit in what remains."""
    (n,) = _U32.unpack_from(view, pos)
    pos += 4
    if n * each > len(view) - pos:
        raise MalformedMessageError(f"a length of {n} at byte {pos - 4} runs past the end of the message")
    return n, pos


def _decode(view: memoryview, pos: int, depth: int) -> tuple:
    tag = view[pos]
    pos += 1
    if tag == 0x4E:  # N
        return None, pos
    if tag == 0x54:  # T
        return True, pos
    if tag == 0x46:  # F
        return False, pos
    if tag == 0x69:  # i
        return _I64.unpack_from(view, pos)[0], pos + 8
    if tag == 0x66:  # f
        return _F64.unpack_from(view, pos)[0], pos + 8
    if tag == 0x73 or tag == 0x62 or tag == 0x49:  # s b I
        n, pos = _length(view, pos)
        chunk = view[pos:pos + n]
        if tag == 0x62:
            return bytes(chunk), pos + n
        if tag == 0x49:
            return int.from_bytes(chunk, "big", signed=True), pos + n
        try:
            return str(chunk, "utf-8", "surrogatepass"), pos + n
        except UnicodeDecodeError as error:
            raise MalformedMessageError(f"a string is not UTF-8: {error.reason}") from None
    if tag == 0x6C or tag == 0x74 or tag == 0x64:  # l t d
        if depth >= MAX_DEPTH:
            raise MalformedMessageError(f"the message nests deeper than {MAX_DEPTH} levels")
        n, pos = _length(view, pos, 2 if tag == 0x64 else 1)
        depth += 1
        if tag == 0x64:
            result = {}
            for _ in range(n):
                key, pos = _decode(view, pos, depth)
                value, pos = _decode(view, pos, depth)
                try:
                    result[key] = value
                except TypeError:
                    raise MalformedMessageError(f"a dict key is unhashable: {type(key).__name__}") from None
            return result, pos
        items = []
        for _ in range(n):
            item, pos = _decode(view, pos, depth)
            items.append(item)
        return (items if tag == 0x6C else tuple(items)), pos
    if tag == 0x41:  # A
        depth_of_path = view[pos]
        pos += 1
        if 4 * (depth_of_path + 1) > len(view) - pos:
            raise MalformedMessageError("an address runs past the end of the message")
        steps = struct.unpack_from(f">{depth_of_path + 1}I", view, pos)
        return Address(steps[:-1], steps[-1]), pos + 4 * (depth_of_path + 1)
    raise MalformedMessageError(f"unknown tag byte 0x{tag:02x} at byte {pos - 1}")
