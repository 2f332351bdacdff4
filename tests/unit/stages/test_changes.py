"""Change-only mode: new, changed, heartbeat-due and closed sockets are sent; the rest are not."""

from __future__ import annotations

import itertools

import numpy as np

from tests.unit.stages.batches import synthetic_batch
from xtcp_async.netlink.batch import PollMeta, SocketBatch
from xtcp_async.stages.chain import StageChain
from xtcp_async.stages.changes import ChangeTracker
from xtcp_async.stages.spec import DEFAULT_EMIT_FIELDS, StageSettings
from xtcp_async.stages.take import take


def _poll(tracker: ChangeTracker, batch: SocketBatch, parts: int = 3) -> tuple[SocketBatch, SocketBatch | None]:
    """One poll of ``batch`` split in ``parts`` batches (as the decoder hands them over)."""
    cuts = np.linspace(0, batch.n, parts + 1).astype(int)
    sent = [tracker.on_batch(batch.slice(a, b)) for a, b in itertools.pairwise(cuts)]
    closed = tracker.on_poll_end(complete=True, meta=PollMeta(poll_id=tracker.poll + 1))
    return SocketBatch.concat(sent), closed


def test_every_socket_is_new_on_the_first_poll_and_none_is_sent_again_unchanged() -> None:
    """Poll 1 sends all; poll 2 with the same values sends nothing and closes nothing."""
    t = ChangeTracker(DEFAULT_EMIT_FIELDS)
    batch = synthetic_batch(3000)
    first, closed = _poll(t, batch)
    assert first.n == 3000 and closed is None and t.tracked == 3000
    second, closed = _poll(t, batch)
    assert second.n == 0 and closed is None


def test_a_changed_counter_is_sent_and_a_timer_is_not_a_change() -> None:
    """bytes_acked moving sends the socket; last_data_recv moving does not."""
    t = ChangeTracker(DEFAULT_EMIT_FIELDS)
    batch = synthetic_batch(1000)
    _poll(t, batch)
    batch.columns["tcp_info_bytes_acked"][[5, 700]] += 100
    batch.columns["tcp_info_last_data_recv"][:] += 1000
    sent, _ = _poll(t, batch)
    assert sorted(sent.columns["inet_diag_msg_socket_cookie"].tolist()) == [6, 701]
    again, _ = _poll(t, batch)
    assert again.n == 0  # compared with the values last *sent*


def test_a_vanished_socket_gets_one_final_closed_record_with_its_identity() -> None:
    """A cookie missing from a complete poll comes back once, flagged closed, with ports and state."""
    t = ChangeTracker(DEFAULT_EMIT_FIELDS)
    batch = synthetic_batch(500)
    _poll(t, batch)
    rest = take(batch, np.setdiff1d(np.arange(500), [10, 20]))
    sent, closed = _poll(t, rest)
    assert sent.n == 0 and closed is not None
    recs = closed.to_records()
    assert [r["inet_diag_msg_socket_cookie"] for r in recs] == [11, 21]
    assert all(r["closed"] is True and r["inet_diag_msg_state"] == 1 for r in recs)
    assert [r["inet_diag_msg_socket_source_port"] for r in recs] == [10_010, 10_020]
    assert t.tracked == 498
    _, closed = _poll(t, rest)
    assert closed is None


def test_an_incomplete_poll_closes_nothing() -> None:
    """Sockets missing from a failed poll are not reported closed (the dump proves nothing)."""
    t = ChangeTracker(DEFAULT_EMIT_FIELDS)
    batch = synthetic_batch(100)
    _poll(t, batch)
    t.on_batch(batch.slice(0, 50))
    assert t.on_poll_end(complete=False) is None
    assert t.tracked == 100


def test_heartbeat_sends_each_unchanged_socket_every_n_polls() -> None:
    """--heartbeat 3: an idle socket is sent on polls 1, 4, 7."""
    t = ChangeTracker(DEFAULT_EMIT_FIELDS, heartbeat=3)
    batch = synthetic_batch(50)
    sent_counts = [_poll(t, batch)[0].n for _ in range(7)]
    assert sent_counts == [50, 0, 0, 50, 0, 0, 50]


def test_new_sockets_join_the_tracked_set_in_cookie_order() -> None:
    """Sockets appearing later are sent once as new and then tracked like the others."""
    t = ChangeTracker(DEFAULT_EMIT_FIELDS)
    _poll(t, synthetic_batch(100, first_cookie=1000))
    both = SocketBatch.concat([synthetic_batch(100, first_cookie=1000), synthetic_batch(30, first_cookie=1)])
    sent, _ = _poll(t, both)
    assert sorted(sent.columns["inet_diag_msg_socket_cookie"].tolist()) == list(range(1, 31))
    assert (np.diff(t.keys.astype(np.int64)) > 0).all() and t.tracked == 130


def test_chain_samples_then_keeps_changes_and_stamps_closed_records() -> None:
    """filter → sample → change-only: closed records keep their sample rate and every batch has both stage columns."""
    chain = StageChain(StageSettings(samples=(), emit="changed"))
    batch = synthetic_batch(200)
    out = chain.on_batch(batch)
    assert out.n == 200 and set(out.columns) >= {"sample_rate_ppm", "closed"}
    assert chain.on_poll_end(complete=True) is None
    chain.on_batch(batch.slice(0, 150))
    closed = chain.on_poll_end(complete=True, meta=PollMeta(poll_id=2))
    assert closed is not None and closed.n == 50 and closed.meta.poll_id == 2
    assert (closed.columns["closed"] == 1).all() and (closed.columns["sample_rate_ppm"] == 1_000_000).all()


def test_memory_per_tracked_socket_is_bounded() -> None:
    """The tracker holds at most 128 bytes per socket with the default fields."""
    t = ChangeTracker(DEFAULT_EMIT_FIELDS)
    _poll(t, synthetic_batch(5000))
    assert t.nbytes() / t.tracked <= 128
