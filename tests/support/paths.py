"""Every decode and encode path run on the same bytes, held to identical results.

The scalar walk is the specification; the numpy walk and the compiled core must give the same
columns, lengths, problem counts, flags and errors, and every payload format must come out
byte-identical whichever decoder made the batch and whichever encoder wrote it.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from xtcp_async import native
from xtcp_async.encode import encode_rows
from xtcp_async.netlink.batch import PollMeta
from xtcp_async.netlink.decode import DecodeResult, decode_messages

#: A meta with every kind of value, so constants and per-row counters are in every payload.
META = PollMeta(poll_id=12345, timestamp_ns=1_700_000_000_123_456_789, hostname="host-ä", location="pop1",
                label="l", tag="t", daemon_version="0.1.0", dump_interrupted=True,
                record_counter_start=2**40)


def require_native() -> None:
    """Skip where the compiled core is not built; fail under CI, where it must be."""
    if native.CORE is not None:
        return
    reason = f"the compiled core is not available: {native.WHY_NOT}"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must build it", pytrace=False)
    pytest.skip(reason=reason)


def decode_paths() -> list[str]:
    """The decode paths to compare with the scalar walk (all of them where the core is built)."""
    require_native()
    return ["numpy", "c"]


def assert_same_result(got: DecodeResult, ref: DecodeResult, label: str) -> None:
    """Two decodes agree on every column, length, counter and flag."""
    a, b = got.batch, ref.batch
    assert a.n == b.n, label
    assert a.columns.keys() == b.columns.keys(), label
    for name in a.columns:
        assert a.columns[name].dtype == b.columns[name].dtype, (label, name)
        np.testing.assert_array_equal(a.columns[name], b.columns[name], err_msg=f"{label}: {name}")
    assert a.lengths.keys() == b.lengths.keys(), label
    for name in a.lengths:
        np.testing.assert_array_equal(a.lengths[name], b.lengths[name], err_msg=f"{label}: {name}")
    np.testing.assert_array_equal(a.congestion, b.congestion, err_msg=label)
    np.testing.assert_array_equal(a.read_ns, b.read_ns, err_msg=label)
    assert got.problems == ref.problems, label
    assert got.errors == ref.errors, label
    assert (got.done, got.dump_interrupted, got.messages) == (ref.done, ref.dump_interrupted, ref.messages), label
    # Which chunk each row came from: the poller stamps each namespace's origin by it.
    assert got.row_chunk.tolist() == ref.row_chunk.tolist(), label


def assert_same_payloads(results: dict[str, DecodeResult]) -> None:
    """Every format's bytes are identical for every decoder's batch and every encoder."""
    for fmt in ("protobuf-list", "protobuf-single", "jsonl"):
        encoders = ["numpy", "c"]
        ref = None
        for dec, res in results.items():
            batch = res.batch.with_meta(META)
            for enc in encoders:
                rows = encode_rows(batch, fmt, path=enc)
                if ref is None:
                    ref = rows
                    continue
                assert rows.data == ref.data, (fmt, dec, enc)
                np.testing.assert_array_equal(rows.offsets, ref.offsets, err_msg=f"{fmt} {dec} {enc}")


def assert_paths_agree(chunks: list[bytes], *, payloads: bool = True) -> DecodeResult:
    """Every decode path gives the scalar walk's result on ``chunks``; every payload is the same."""
    read_ns = list(range(100, 100 + len(chunks)))
    ref = decode_messages(chunks, read_ns, path="scalar")
    results = {"scalar": ref}
    for path in decode_paths():
        results[path] = decode_messages(chunks, read_ns, path=path)
        assert_same_result(results[path], ref, path)
    if payloads:
        assert_same_payloads(results)
    return results["c"]
