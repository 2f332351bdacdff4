"""Payloads packed across several encoded parts equal those packed from the parts joined first.

The encoder no longer concatenates decoded batches: each is encoded on its own and ``pack`` reads
the parts in order. A payload that spans parts, a cap that splits one, a record too large for the
cap and empty parts must all come out exactly as they would from one joined buffer.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.replay import recorded_chunks
from xtcp_async.encode import encode_rows
from xtcp_async.encode.framing import EncodedRows, pack
from xtcp_async.netlink.batch import SocketBatch
from xtcp_async.netlink.decode import decode_messages
from xtcp_async.pending import PendingBatch, split_pending


def joined(parts: list[EncodedRows]) -> EncodedRows:
    """The reference: the parts' rows in one buffer, as the encoder used to build it."""
    rows = [p.data[int(p.offsets[i]):int(p.offsets[i + 1])] for p in parts for i in range(p.n)]
    return EncodedRows.from_list(rows)


@st.composite
def parts_and_caps(draw: st.DrawFn) -> tuple[list[EncodedRows], int, int, bool, bool]:
    rows = draw(st.lists(st.binary(min_size=1, max_size=40), max_size=60))
    cuts = sorted(draw(st.lists(st.integers(0, len(rows)), max_size=6)))
    bounds = [0, *cuts, len(rows)]
    parts = [EncodedRows.from_list(rows[a:b]) for a, b in itertools.pairwise(bounds)]
    max_bytes = draw(st.integers(8, 400))
    max_rows = draw(st.integers(1, 30))
    return parts, max_bytes, max_rows, draw(st.booleans()), draw(st.booleans())


@pytest.mark.timeout(60)
@settings(max_examples=400, deadline=None)
@given(parts_and_caps())
def test_pack_across_parts_equals_pack_of_the_joined_rows(
        case: tuple[list[EncodedRows], int, int, bool, bool]) -> None:
    parts, max_bytes, max_rows, list_framing, single = case
    ref = pack(joined(parts), max_bytes=max_bytes, max_rows=max_rows, list_framing=list_framing,
               one_row_per_payload=single)
    got = pack(parts, max_bytes=max_bytes, max_rows=max_rows, list_framing=list_framing,
               one_row_per_payload=single)
    assert got.payloads == ref.payloads
    assert got.too_large == ref.too_large
    assert all(isinstance(p, bytes) for p in got.payloads)


@pytest.mark.timeout(60)
def test_pack_of_one_part_spanning_payloads_keeps_every_row_once() -> None:
    rows = [bytes([65 + i % 26]) * (1 + i % 7) for i in range(100)]
    parts = [EncodedRows.from_list(rows[:33]), EncodedRows.from_list([]), EncodedRows.from_list(rows[33:])]
    got = pack(parts, max_bytes=50, max_rows=10, list_framing=False)
    assert b"".join(got.payloads) == b"".join(rows)
    assert all(len(p) <= 50 for p in got.payloads)


def _batch() -> SocketBatch:
    return decode_messages(recorded_chunks()).batch


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cut", [0, 1, 5, 13, 20, 27])
def test_split_pending_cuts_rows_and_their_encoded_bytes_at_the_same_row(cut: int) -> None:
    b = _batch()
    assert b.n == 27
    fmts = ("protobuf-list", "jsonl")
    # Two parts in one batch, as a batch bigger than an encode slice has.
    batches = [PendingBatch(x, {f: [encode_rows(x.slice(0, 3), f), encode_rows(x.slice(3, x.n), f)] for f in fmts})
               for x in (b.slice(0, 5), b.slice(5, 13), b.slice(13, 27))]
    head, tail = split_pending(batches, cut)
    assert sum(x.n for x in head) == cut
    assert sum(x.n for x in tail) == 27 - cut
    assert all(x.n for x in head + tail)
    cookies = np.concatenate([x.batch.columns["inet_diag_msg_socket_cookie"] for x in head + tail])
    assert cookies.tolist() == b.columns["inet_diag_msg_socket_cookie"].tolist()
    for f in fmts:
        whole = encode_rows(b, f)
        for side, lo in ((head, 0), (tail, cut)):
            got = pack([p for x in side for p in x.parts[f]], max_bytes=1 << 20, max_rows=100, list_framing=False)
            want = pack(whole.slice(lo, lo + sum(x.n for x in side)), max_bytes=1 << 20, max_rows=100,
                        list_framing=False)
            assert got.payloads == want.payloads
        for x in head + tail:  # each batch's parts cover exactly its rows
            assert sum(p.n for p in x.parts[f]) == x.n


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fmt", ["protobuf-list", "protobuf-single", "jsonl"])
def test_batches_encoded_apart_pack_as_the_concatenated_batch(fmt: str) -> None:
    """What the encoder now sends equals what it sent when it concatenated the batches first."""
    b = _batch()
    batches = [b.slice(0, 4), b.slice(4, 11), b.slice(11, 27)]
    old = pack(encode_rows(SocketBatch.concat(batches), fmt), max_bytes=3000, max_rows=10,
               list_framing=fmt == "protobuf-list", one_row_per_payload=fmt == "protobuf-single")
    new = pack([encode_rows(x, fmt) for x in batches], max_bytes=3000, max_rows=10,
               list_framing=fmt == "protobuf-list", one_row_per_payload=fmt == "protobuf-single")
    assert new.payloads == old.payloads
