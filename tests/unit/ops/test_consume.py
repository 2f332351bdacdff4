"""Specifications for the demo consumer's payload reader."""

from __future__ import annotations

import pytest

from xtcp_async.encode import varint
from xtcp_async.encode.gen import xtcp_flat_record_pb2 as pb
from xtcp_async.ops.consume import read_varint, records


def envelope(*ports: int) -> bytes:
    env = pb.Envelope()
    for port in ports:
        env.row.add(hostname="h1", inet_diag_msg_socket_source_port=port)
    return env.SerializeToString()


def test_protobuf_list_payload_yields_every_record_in_order() -> None:
    """Each varint-framed Envelope in a payload contributes its rows, in order."""
    a, b = envelope(80, 443), envelope(8080)
    payload = varint(len(a)) + a + varint(len(b)) + b
    got = list(records(payload))
    assert [r["inet_diag_msg_socket_source_port"] for r in got] == [80, 443, 8080]
    assert got[0]["hostname"] == "h1"


def test_truncated_payload_is_an_error() -> None:
    """A payload cut inside an entry raises instead of printing a partial record."""
    a = envelope(80)
    with pytest.raises(ValueError, match="truncated"):
        list(records(varint(len(a)) + a[:-1]))


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**35])
def test_varints_round_trip(value: int) -> None:
    """read_varint inverts the encoder's varint."""
    assert read_varint(varint(value) + b"\x00", 0) == (value, len(varint(value)))
