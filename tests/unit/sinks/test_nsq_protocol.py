"""NSQ V2 framing: commands out byte for byte, frames in however the bytes are split."""

from __future__ import annotations

import json
import struct
import zlib

import pytest

from xtcp_async.sinks.nsq_protocol import (
    FRAME_ERROR,
    FRAME_RESPONSE,
    DeflateCodec,
    FrameReader,
    NsqProtocolError,
    SnappyCodec,
    identify,
    is_valid_topic,
    mpub,
    mpub_body_size,
    pub,
)


def frame(kind: int, data: bytes) -> bytes:
    return struct.pack(">II", 4 + len(data), kind) + data


def test_pub_is_name_topic_newline_then_size_prefixed_body() -> None:
    """PUB is `PUB <topic>\\n`, a 4-byte big-endian size, then the message."""
    assert b"".join(pub("xtcp", b"hello")) == b"PUB xtcp\n\x00\x00\x00\x05hello"


def test_mpub_body_counts_messages_and_prefixes_each_size() -> None:
    """MPUB's body is the message count then each message with its own size; its size is declared."""
    wire = b"".join(mpub("t", [b"ab", b"cde"]))
    body = b"\x00\x00\x00\x02" + b"\x00\x00\x00\x02ab" + b"\x00\x00\x00\x03cde"
    assert wire == b"MPUB t\n" + struct.pack(">I", len(body)) + body
    assert mpub_body_size([b"ab", b"cde"]) == len(body)


def test_mpub_never_copies_the_payloads() -> None:
    """The payload objects themselves are among the pieces handed to the transport."""
    payloads = [b"x" * 100, b"y" * 100]
    pieces = mpub("t", payloads)
    assert any(p is payloads[0] for p in pieces)
    assert any(p is payloads[1] for p in pieces)


def test_identify_carries_json_features() -> None:
    """IDENTIFY is a size-prefixed JSON body."""
    line, size, body = identify({"feature_negotiation": True})
    assert line == b"IDENTIFY\n"
    assert struct.unpack(">I", size)[0] == len(body)
    assert json.loads(body) == {"feature_negotiation": True}


def test_frames_are_parsed_whatever_the_split() -> None:
    """Frames fed one byte at a time or several at once come out whole and in order."""
    stream = frame(FRAME_RESPONSE, b"OK") + frame(FRAME_RESPONSE, b"_heartbeat_") + frame(FRAME_ERROR, b"E_X y")
    expected = [(FRAME_RESPONSE, b"OK"), (FRAME_RESPONSE, b"_heartbeat_"), (FRAME_ERROR, b"E_X y")]
    for step in (1, 3, 7, len(stream)):
        reader, got = FrameReader(), []
        for i in range(0, len(stream), step):
            reader.feed(stream[i : i + step])
            while (f := reader.next_frame()) is not None:
                got.append(f)
        assert got == expected


def test_bytes_after_a_frame_can_be_taken_back() -> None:
    """take_rest returns what follows the last whole frame (needed when compression starts)."""
    reader = FrameReader()
    reader.feed(frame(FRAME_RESPONSE, b"{}") + b"\x01\x02")
    assert reader.next_frame() == (FRAME_RESPONSE, b"{}")
    assert reader.take_rest() == b"\x01\x02"
    assert reader.next_frame() is None


def test_an_impossible_frame_size_is_a_protocol_error() -> None:
    """A size below 4 (no room for the type) means the stream is out of sync."""
    reader = FrameReader()
    reader.feed(b"\x00\x00\x00\x02xx")
    with pytest.raises(NsqProtocolError):
        reader.next_frame()


@pytest.mark.parametrize(("name", "valid"), [
    ("xtcp", True), ("a.b_c-d", True), ("t#ephemeral", True), ("x" * 64, True),
    ("", False), ("x" * 65, False), ("a b", False), ("a/b", False), ("t#other", False)])
def test_topic_names_follow_nsqd(name: str, valid: bool) -> None:
    """Topic names are 1..64 of [.a-zA-Z0-9_-], optionally ending in #ephemeral."""
    assert is_valid_topic(name) is valid


def test_deflate_is_raw_and_flushed_per_write() -> None:
    """Each compressed write decodes completely on its own with a raw-deflate reader."""
    codec, peer = DeflateCodec(6), zlib.decompressobj(-15)
    for chunk in (b"PUB t\n", b"\x00" * 1000, b"end"):
        assert peer.decompress(codec.compress(chunk)) == chunk
    sender = zlib.compressobj(6, zlib.DEFLATED, -15)
    wire = sender.compress(b"hello world" * 100) + sender.flush(zlib.Z_SYNC_FLUSH)
    assert b"".join(codec.decompress(wire[i : i + 5]) for i in range(0, len(wire), 5)) == b"hello world" * 100


def test_snappy_frames_both_ways() -> None:
    """Snappy framing: writes are valid framed streams; reads reassemble split chunks."""
    cramjam = pytest.importorskip("cramjam", reason="snappy compression needs cramjam")
    codec = SnappyCodec()
    data = bytes(range(256)) * 1000
    assert bytes(cramjam.snappy.decompress(codec.compress(data) + codec.compress(b"more"))) == data + b"more"
    wire = bytes(cramjam.snappy.compress(data))
    assert b"".join(codec.decompress(wire[i : i + 1000]) for i in range(0, len(wire), 1000)) == data


def test_snappy_rejects_unknown_unskippable_chunks() -> None:
    """Chunk types 0x02-0x7f are reserved unskippable: the stream cannot be read past them."""
    pytest.importorskip("cramjam", reason="snappy compression needs cramjam")
    with pytest.raises(NsqProtocolError):
        SnappyCodec().decompress(b"\x02\x01\x00\x00x")
