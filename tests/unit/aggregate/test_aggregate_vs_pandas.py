"""Aggregate records equal an independent pandas computation over the same sockets, for every key."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.support.aggregate_oracle import key_of, oracle
from tests.support.asn import capture_batch, write_pfx2as
from tests.support.fixtures import iter_pcap_netlink, require_fixtures, sockets_pcaps
from xtcp_async.aggregate.poll import PollAggregator
from xtcp_async.aggregate.records import AggregateSettings
from xtcp_async.enrich.asndb import load_asn_db
from xtcp_async.enrich.stage import enrich
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.batch import PollMeta, SocketBatch
from xtcp_async.netlink.decode import decode_messages

KEY_SETS = [("asn",), ("prefix",), ("port",), ("cc",), ("state",), ("asn", "cc"), ("state", "port", "prefix"),
            ("location", "hostname"), ("asn", "prefix", "port", "cc", "state")]
META = PollMeta(poll_id=3, timestamp_ns=1_700_000_000_000_000_000, hostname="edge-1", location="ams1")


@pytest.fixture(scope="module")
def polls(tmp_path_factory: pytest.TempPathFactory) -> tuple[SocketBatch, SocketBatch]:
    """Two polls of the same sockets: the recorded 6.18 dump plus every kernel's 100-socket capture
    (tcp_info of 104 to 280 bytes), enriched; in the second, some sockets are gone and the counters
    of the rest moved (one of them backwards)."""
    root = require_fixtures()
    chunks: list[bytes] = []
    for path in sockets_pcaps(root):
        if "_100_sockets" in path.name:
            chunks.extend(iter_pcap_netlink(path))
    first = SocketBatch.concat([capture_batch(), decode_messages(chunks).batch])
    db = write_pfx2as(tmp_path_factory.mktemp("asn") / "pfx2as.txt")
    first = enrich(first, load_asn_db(db), (24, 48))
    keep = np.arange(first.n) % 5 != 0
    cols = {k: v[keep] for k, v in first.columns.items()}
    n = int(keep.sum())
    cols["tcp_info_bytes_acked"] = cols["tcp_info_bytes_acked"] + np.arange(n, dtype=np.uint64) * np.uint64(1000)
    cols["tcp_info_bytes_received"] = cols["tcp_info_bytes_received"] + np.uint64(7)
    cols["tcp_info_bytes_acked"][1] = 0  # went backwards: counts 0
    second = replace(first, n=n, columns=cols, lengths={k: v[keep] for k, v in first.lengths.items()},
                     congestion=first.congestion[keep], read_ns=first.read_ns[keep])
    assert first.n > 1000
    return first, second


def run(batches: list[SocketBatch], keys: tuple[str, ...], max_groups: int = 10_000) -> list[dict[str, Any]]:
    """Our records for the last of ``batches`` (each one poll, fed in two halves)."""
    agg = PollAggregator(AggregateSettings(keys, max_groups))
    records: list[dict[str, Any]] = []
    for b in batches:
        half = b.n // 2
        agg.add(b.slice(0, half))
        agg.add(b.slice(half, b.n))
        records = agg.end(META)
    return records


def assert_equal(ours: dict[str, Any], theirs: dict[str, Any], where: object) -> None:
    for name, value in theirs.items():
        got = ours.get(name, 0)
        assert got == value, (where, name, got, value)


@pytest.mark.parametrize("keys", KEY_SETS, ids=lambda k: ",".join(k))
def test_every_aggregate_equals_pandas(polls: tuple[SocketBatch, SocketBatch], keys: tuple[str, ...]) -> None:
    """Over two polls, every group's every statistic (deltas included) equals pandas' on the same rows."""
    first, second = polls
    ours = {key_of(r, keys): r for r in run([first, second], keys)}
    theirs = oracle(second.to_records(), keys, prev=first.to_records())
    assert set(ours) == set(theirs)
    for key, want in theirs.items():
        assert_equal(ours[key], want, key)
    assert sum(r["sockets"] for r in ours.values()) == second.n
    assert any(r["bytes_acked_delta"] for r in ours.values())


def test_records_carry_the_poll_and_group_by(polls: tuple[SocketBatch, SocketBatch]) -> None:
    """Each record names its poll, host, PoP and the keys it was grouped by."""
    recs = run([polls[0]], ("location", "hostname", "asn"))
    assert {(r["poll_id"], r["hostname"], r["location"], r["group_by"]) for r in recs} == \
        {(3, "edge-1", "ams1", "location,hostname,asn")}


def test_group_cap_folds_the_smallest_groups_into_other(polls: tuple[SocketBatch, SocketBatch]) -> None:
    """With more groups than the cap, the largest are kept exactly and the rest form one counted "other"."""
    first = polls[0]
    keys = ("state", "port", "prefix")
    theirs = oracle(first.to_records(), keys)
    cap = 4
    assert len(theirs) > cap
    recs = run([first], keys, max_groups=cap)
    assert len(recs) == cap
    other = [r for r in recs if r.get("other")]
    kept = {key_of(r, keys): r for r in recs if not r.get("other")}
    assert len(other) == 1 and other[0]["groups_folded"] == len(theirs) - (cap - 1)
    for key, r in kept.items():
        assert_equal(r, {"sockets": theirs[key]["sockets"], "rtt_p99": theirs[key]["rtt_p99"]}, key)
    smallest_kept = min(r["sockets"] for r in kept.values())
    folded = [v["sockets"] for k, v in theirs.items() if k not in kept]
    assert max(folded) <= smallest_kept
    assert other[0]["sockets"] == sum(folded)


def test_no_sockets_no_records() -> None:
    """A poll that saw no socket produces no aggregate record."""
    agg = PollAggregator(AggregateSettings(("asn",), 10))
    assert agg.end(META) == []


def test_first_poll_has_no_deltas(tmp_path: Path) -> None:
    """Deltas need a previous poll: the first one reports none."""
    recs = run([capture_batch()], ("state",))
    assert all(r["bytes_acked_delta"] == 0 and r["delta_sockets"] == 0 for r in recs)


def test_netns_groups_when_rows_carry_a_namespace(polls: tuple[SocketBatch, SocketBatch]) -> None:
    """Rows tagged with network namespaces group by namespace inode, each group as pandas counts it."""
    first = polls[0]
    inodes = (np.arange(first.n) % 3).astype(np.uint64) + np.uint64(4026531840)
    tagged = replace(first, columns={**first.columns, "netns_inode": inodes})
    recs = run([tagged], ("netns", "state"))
    records = first.to_records()
    for rec, inode in zip(records, inodes.tolist(), strict=True):
        rec["netns_inode"] = inode
    df = pd.DataFrame.from_records(records)
    want = df.groupby(["netns_inode", "inet_diag_msg_state"]).size().to_dict()
    got = {(r["netns_inode"], c.TCP_STATES[r["state"]]): r["sockets"] for r in recs}
    assert got == want and len({k[0] for k in got}) == 3


def test_sampled_rows_report_the_effective_sample_rate(polls: tuple[SocketBatch, SocketBatch]) -> None:
    """With rows kept at 10% and 100% (issue 11's sample_rate_ppm), each group reports its sockets over
    their scaled-back count, as pandas computes it."""
    first = polls[0]
    ppm = np.where(np.arange(first.n) % 2 == 0, 100_000, 1_000_000).astype(np.uint32)
    sampled = replace(first, columns={**first.columns, "sample_rate_ppm": ppm})
    keys = ("state",)
    ours = {key_of(r, keys): r for r in run([sampled], keys)}
    theirs = oracle(sampled.to_records(), keys)
    assert {k: ours[k]["sample_rate"] for k in theirs} == {k: v["sample_rate"] for k, v in theirs.items()}
    assert all(0 < r["sample_rate"] <= 1 for r in ours.values())
