"""The actor message codec: round trips of every allowed type, clear errors at the sender, hostile input."""

from __future__ import annotations

import collections
import enum
import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poorio.actors import codec
from poorio.actors.address import Address
from poorio.errors import MalformedMessageError, MessageTooLargeError

addresses = st.builds(
    Address, st.lists(st.integers(0, 2**32 - 1), max_size=5).map(tuple), st.integers(0, 2**32 - 1)
)
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary() | addresses
)
hashables = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4).map(tuple), max_leaves=8)
messages = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5)
    | st.lists(inner, max_size=5).map(tuple)
    | st.dictionaries(hashables, inner, max_size=5),
    max_leaves=40,
)


def same(a, b) -> bool:
    """Equal, and of exactly the same types all the way down (1 == True == 1.0 would hide a change)."""
    if type(a) is not type(b):
        return False
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return len(a) == len(b) and all(same(ka, kb) and same(a[ka], b[kb]) for ka, kb in zip(a, b))
    if type(a) is float and math.isnan(a):
        return math.isnan(b)
    return a == b


@given(messages)
@settings(max_examples=400)
def test_every_allowed_value_round_trips(message):
    data = codec.encode(message)
    copy = codec.decode(data)
    assert same(copy, message)


def test_each_type_by_hand():
    message = [
        None, True, False, 0, -1, 2**63 - 1, -(2**63), 2**64, -(2**200), 1.5, float("inf"), -0.0,
        "", "héllo \udc80", b"", b"\x00\xff", [], (), {}, {"k": (1, [2, {3: b"4"}])}, Address((1, 2), 3),
    ]  # fmt: skip
    copy = codec.decode(codec.encode(message))
    assert same(copy, message)
    assert math.isnan(codec.decode(codec.encode(float("nan"))))
    assert codec.decode(codec.encode(-0.0)) == 0.0 and math.copysign(1, codec.decode(codec.encode(-0.0))) == -1


def test_a_copy_shares_nothing():
    inner = [1, 2]
    message = {"a": inner, "b": inner}
    copy = codec.decode(codec.encode(message))
    copy["a"].append(3)
    assert inner == [1, 2] and copy["b"] == [1, 2]


class Colour(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    "value",
    [object(), {1, 2}, frozenset(), bytearray(b"x"), memoryview(b"x"), 1j, Colour.RED,
     collections.OrderedDict(), collections.namedtuple("P", "x")(1), lambda: 1, Exception("e")],
    ids=lambda v: type(v).__name__,
)  # fmt: skip
def test_unsupported_types_are_a_clear_error_at_the_sender(value):
    with pytest.raises(TypeError, match="cannot carry") as info:
        codec.encode({"nested": [value]})
    assert type(value).__qualname__ in str(info.value)


def test_too_deep_or_self_containing_is_a_clear_error():
    deep = []
    for _ in range(codec.MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(ValueError, match="nests deeper"):
        codec.encode(deep)
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        codec.encode(loop)


def test_near_and_over_the_size_limit():
    overhead = len(codec.encode(b""))
    exact = b"x" * (codec.MAX_MESSAGE_SIZE - overhead)
    assert len(codec.encode(exact)) == codec.MAX_MESSAGE_SIZE
    assert codec.decode(codec.encode(exact)) == exact
    with pytest.raises(MessageTooLargeError, match="limit"):
        codec.encode(exact + b"x")
    with pytest.raises(MessageTooLargeError):
        codec.encode(["y" * 1000] * 2000)  # many small parts add up too
    with pytest.raises(MessageTooLargeError):
        codec.decode(b"N" * (codec.MAX_MESSAGE_SIZE + 1))


@pytest.mark.parametrize(
    "data,why",
    [
        (b"", "truncated"),
        (b"Z", "unknown tag"),
        (b"NN", "follow the message"),
        (b"i\x00\x00", "truncated"),
        (b"s" + struct.pack(">I", 5) + b"abc", "runs past the end"),
        (b"s" + struct.pack(">I", 2) + b"\xff\xfe", "not UTF-8"),
        (b"l" + struct.pack(">I", 2**32 - 1), "runs past the end"),
        (b"d" + struct.pack(">I", 1) + b"l" + struct.pack(">I", 0) + b"N", "unhashable"),
        (b"A\x05" + b"\x00" * 8, "address runs past"),
        (b"l\x00\x00\x00\x01" * 100 + b"N", "nests deeper"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_malformed_input_is_rejected(data, why):
    with pytest.raises(MalformedMessageError, match=why):
        codec.decode(data)


@given(st.binary(max_size=200))
@settings(max_examples=2000)
def test_random_bytes_decode_or_fail_cleanly(data):
    try:
        value = codec.decode(data)
    except MalformedMessageError:
        return
    assert same(codec.decode(codec.encode(value)), value)  # whatever decoded is plain data again


@given(messages, st.data())
@settings(max_examples=300)
def test_corrupted_messages_decode_or_fail_cleanly(message, data):
    encoded = bytearray(codec.encode(message))
    if not encoded:
        return
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(encoded) - 1))
        encoded[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    try:
        codec.decode(bytes(encoded[:cut]))
    except MalformedMessageError:
        pass


def test_a_huge_declared_length_allocates_nothing():
    # A 4 GiB string or list declared in 5 bytes: refused before any allocation.
    for tag in b"sblt":
        with pytest.raises(MalformedMessageError, match="runs past the end"):
            codec.decode(bytes([tag]) + b"\xff\xff\xff\xff")
