"""End to end: the real CLI streams polls into a real nsqd and a consumer reads them back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.brokers.nsqd import Nsqd, consume
from xtcp_async.encode.gen.xtcp_flat_record_pb2 import Envelope

pytestmark = pytest.mark.nsq

CLI = Path(sys.executable).with_name("xtcp-async")


def _read_varint(data: bytes) -> tuple[int, int]:
    value = shift = pos = 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7


def test_cli_polls_arrive_in_nsqd_as_decodable_protobuf_lists(nsqd: Nsqd, topic: str) -> None:
    """`xtcp-async --sink nsq://.../topic --count 2` publishes protobuf-list batches that decode,
    and the listening sockets of nsqd itself are among the records."""
    proc = subprocess.run([str(CLI), "--sink", f"nsq://{nsqd.tcp_address}/{topic}", "--count", "2",
                           "--interval", "0.5", "--poll-timeout", "0.4", "--states", "listen"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    published = nsqd.topic_message_count(topic)
    assert published >= 2  # at least one payload per poll
    messages = consume(nsqd.tcp_address, topic, published)
    assert len(messages) == published
    ports, polls = set(), set()
    for message in messages:
        length, offset = _read_varint(message)
        assert offset + length == len(message)  # one varint-framed Envelope per message
        envelope = Envelope.FromString(message[offset:])
        assert len(envelope.row) > 0
        for row in envelope.row:
            ports.add(row.inet_diag_msg_socket_source_port)
            polls.add(row.poll_id)
    assert nsqd.tcp_port in ports
    assert len(polls) == 2
