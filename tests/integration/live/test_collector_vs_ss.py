"""The collector against the running kernel: it reports exactly the sockets ss lists, with the values ss prints.

The traffic program (traffic.py) makes IPv4, IPv6 and v4-mapped connections with traffic in a
namespace of our own and holds them quiescent. The collector polls once (``--once``, jsonl file
sink), then ``ss -tainOHem`` and ``ss -tanOH`` run in the same namespace right after. Values are
compared as the text ss prints (ss_line.py), so ss's ms rounding is allowed and nothing else;
only the lastsnd/lastrcv/lastack and timer-expiry clocks, which tick between the two reads, are
left out.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .harness import Netns, Traffic, netns_unavailable_reason, read_jsonl, run_collector, skip_or_fail
from .harness import netns as make_netns
from .ss_line import STATES, Key, SsLine, parse_text, problems_against_ss, record_key

pytestmark = pytest.mark.root

#: Keys ss must print for every established socket here (all have traffic both ways).
ESTAB_KEYS = ("rtt", "rto", "ato", "mss", "cwnd", "bytes_sent", "bytes_acked", "bytes_received", "segs_out",
              "segs_in", "data_segs_out", "data_segs_in", "wscale", "skmem", "ino", "sk")
CLOSE = STATES["UNCONN"]


@dataclass
class Snapshot:
    """One collector poll and the ss runs right after it."""

    records: list[dict[str, Any]]
    detailed: list[SsLine]
    listed: list[SsLine]
    info: dict[str, Any]

    def bound_only(self) -> set[Key]:
        """Keys of the traffic program's bound-but-unconnected socket (ss 6.1 cannot list those)."""
        return {k for k in map(record_key, self.records) if k[0] == CLOSE and k[2] == self.info["bound_port"]}


def _keys(items: list[Any], key: Any) -> Counter[Key]:
    return Counter(map(key, items))


def _ss(ns: Netns, *args: str) -> list[SsLine]:
    return parse_text(ns.run(["ss", *args]))


@pytest.fixture(scope="module")
def snapshot(netns: Netns, traffic: Traffic, tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """A --once poll of the traffic namespace, then ss -tainOHem and ss -tanOH in it."""
    out = tmp_path_factory.mktemp("live") / "out.jsonl"
    records = run_collector(netns, out, "--once")
    return Snapshot(records, _ss(netns, "-tainOHem"), _ss(netns, "-tanOH"), traffic.info)


def _by_key(records: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    out: dict[Key, dict[str, Any]] = {}
    for rec in records:
        key = record_key(rec)
        assert key not in out, f"two records for {key}"
        out[key] = rec
    return out


def test_collector_reports_exactly_the_sockets_ss_lists(snapshot: Snapshot) -> None:
    """Every socket ss -tan lists is reported once, matched by state, addresses and ports, and nothing else is."""
    ours = _keys(snapshot.records, record_key)
    assert not snapshot.bound_only()  # like ss, bound-inactive sockets only on request
    listed = _keys(snapshot.listed, lambda s: s.key)
    assert ours == listed, f"missing: {listed - ours}; extra: {ours - listed}"
    assert _keys(snapshot.detailed, lambda s: s.key) == listed


def test_bound_only_socket_is_reported_in_state_close_on_request(
    netns: Netns, traffic: Traffic, tmp_path: Path
) -> None:
    """With --states all,bound-inactive a bound but neither listening nor connected socket is reported as CLOSE."""
    records = run_collector(netns, tmp_path / "out.jsonl", "--once", "--states", "all,bound-inactive")
    snap = Snapshot(records, [], [], traffic.info)
    bound = snap.bound_only()
    assert bound == {(CLOSE, "127.0.0.1", traffic.info["bound_port"], "0.0.0.0", 0)}
    (rec,) = (r for r in records if record_key(r) in bound)
    assert rec["tcp_info_length"] == 0  # the kernel sends no INET_DIAG_INFO for it


def test_both_families_and_every_kind_of_socket_are_covered(snapshot: Snapshot) -> None:
    """The snapshot has both families, listeners, half-closed, TIME-WAIT, v4-mapped, cubic, uid-65534, lo-bound."""
    recs = snapshot.records
    assert {r["inet_diag_msg_family"] for r in recs} == {2, 10}
    states = Counter(r["inet_diag_msg_state"] for r in recs)
    for name, least in (("ESTAB", 18), ("LISTEN", 4), ("FIN-WAIT-2", 1), ("CLOSE-WAIT", 1), ("TIME-WAIT", 1)):
        assert states[STATES[name]] >= least, f"{name}: {states}"
    assert any(r["inet_diag_msg_socket_source"].startswith("::ffff:") for r in recs)
    assert {r.get("congestion_algorithm_string") for r in recs} >= {"cubic", snapshot.info["default_cc"]}
    assert any(r["inet_diag_msg_uid"] == 65534 for r in recs)
    bound_to_lo = [s for s in snapshot.detailed if s.interface == "lo"]
    assert [s.local[1] for s in bound_to_lo] == [snapshot.info["device_port"]]


def test_every_socket_agrees_with_ss_key_by_key(snapshot: Snapshot) -> None:
    """For each socket, every value ss -tainOHem prints equals the record's value rendered the way ss prints it."""
    problems = problems_against_ss(_by_key(snapshot.records), snapshot.detailed)
    assert not problems, "\n".join(problems)


def test_established_sockets_show_the_full_set_of_compared_keys(snapshot: Snapshot) -> None:
    """ss prints rtt, rto, ato, mss, cwnd, byte/segment counters, wscale, skmem, ino, cc info for every ESTAB socket."""
    estab = [s for s in snapshot.detailed if s.state == "ESTAB"]
    assert len(estab) >= 18
    for sock in estab:
        missing = [k for k in ESTAB_KEYS if k not in sock.values]
        assert not missing, f"{sock.text}: no {missing}"
        assert sock.cc in ("cubic", snapshot.info["default_cc"])
        if sock.cc == "bbr":
            assert set(sock.values["bbr"]) >= {"bw", "mrtt"}
        assert set(sock.values["skmem"]) == {"r", "rb", "t", "tb", "f", "w", "o", "bl", "d"}


def test_byte_counters_equal_what_the_traffic_program_moved(snapshot: Snapshot) -> None:
    """Each connection's bytes_sent and bytes_received, at both ends, equal the bytes the program wrote and read."""
    recs = snapshot.records
    for conn in [*snapshot.info["connections"], snapshot.info["half_closed"]]:
        client = [r for r in recs if r["inet_diag_msg_socket_source_port"] == conn["client_port"]
                  and r["inet_diag_msg_state"] != STATES["TIME-WAIT"]]
        server = [r for r in recs if r["inet_diag_msg_socket_destination_port"] == conn["client_port"]
                  and r["inet_diag_msg_socket_source_port"] == conn["server_port"]]
        assert len(client) == 1, conn
        assert len(server) == 1, conn
        c, s = client[0], server[0]
        assert (c["tcp_info_bytes_sent"], c["tcp_info_bytes_received"]) == (conn["up"], conn["down"]), conn
        assert (s["tcp_info_bytes_sent"], s["tcp_info_bytes_received"] - (c["shutdown_state"] != 0)) == (
            conn["down"], conn["up"]), conn  # a received FIN counts one byte
        assert c["tcp_info_bytes_retrans"] == s["tcp_info_bytes_retrans"] == 0
        if conn["cc"]:
            assert c["congestion_algorithm_string"] == conn["cc"]
        if conn["uid"] is not None:
            assert c["inet_diag_msg_uid"] == conn["uid"]


def test_records_carry_this_poll_metadata(snapshot: Snapshot) -> None:
    """One poll stamps poll_id 1, record counters 0..n-1, the family name, and tcp_info on every socket that has one."""
    recs = snapshot.records
    assert {r["poll_id"] for r in recs} == {1}
    assert sorted(r["record_counter"] for r in recs) == list(range(len(recs)))
    for r in recs:
        assert r["inet_diag_msg_family_name"] == {2: "inet", 10: "inet6"}[r["inet_diag_msg_family"]]
        has_info = r["inet_diag_msg_state"] not in (STATES["TIME-WAIT"], CLOSE)
        assert (r["tcp_info_length"] > 0) == has_info, r
        assert r["socket_read_timestamp_ns"] >= r["timestamp_ns"] - 10**9


# --- filters and repeated polls ---------------------------------------------------------------------------


def _ours_without_bound(records: list[dict[str, Any]], bound_port: int) -> Counter[Key]:
    """Our keys, checking the bound-only socket is absent (it is reported only on request)."""
    keys = _keys(records, record_key)
    assert not [k for k in keys if k[0] == CLOSE and k[2] == bound_port]
    return keys


@pytest.mark.parametrize(
    ("flags", "ss_args", "families", "states"),
    [
        (("--family", "inet"), ("-4",), {2}, None),
        (("--family", "inet6"), ("-6",), {10}, None),
        (("--states", "listen"), ("-l",), {2, 10}, {STATES["LISTEN"]}),
        (("--family", "inet6", "--states", "established"), ("-6", "state", "established"), {10},
         {STATES["ESTAB"]}),
    ],
    ids=["inet", "inet6", "listen", "inet6-established"],
)
def test_family_and_state_filters_report_only_the_selected_sockets(
    netns: Netns, traffic: Traffic, tmp_path: Path, flags: tuple[str, ...], ss_args: tuple[str, ...],
    families: set[int], states: set[int] | None,
) -> None:
    """--family and --states restrict the dump to exactly the sockets ss lists with the same filter."""
    records = run_collector(netns, tmp_path / "out.jsonl", "--once", *flags)
    assert records
    assert {r["inet_diag_msg_family"] for r in records} == families
    if states is not None:
        assert {r["inet_diag_msg_state"] for r in records} == states
    # With a state filter ss leaves out the State column.
    state = "ESTAB" if "established" in ss_args else None
    listed = _keys(parse_text(netns.run(["ss", "-tanOH", *ss_args]), state), lambda s: s.key)
    assert _ours_without_bound(records, traffic.info["bound_port"]) == listed


def test_count_three_polls_numbers_them_and_keeps_counting_records(
    netns: Netns, traffic: Traffic, tmp_path: Path
) -> None:
    """--count 3 --interval 0.3 polls 3 times (poll_id 1..3), each with every socket; record_counter keeps rising."""
    records = run_collector(netns, tmp_path / "out.jsonl", "--count", "3", "--interval", "0.3",
                            "--poll-timeout", "0.2")
    polls: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        polls.setdefault(r["poll_id"], []).append(r)
    assert sorted(polls) == [1, 2, 3]
    counters = [r["record_counter"] for r in records]
    assert counters == list(range(len(records))), counters
    key_sets = [_keys(polls[p], record_key) for p in (1, 2, 3)]
    assert key_sets[0] == key_sets[1] == key_sets[2]
    listed = _keys(_ss(netns, "-tanOH"), lambda s: s.key)
    assert _ours_without_bound(polls[1], traffic.info["bound_port"]) == listed
    starts = [polls[p][0]["timestamp_ns"] for p in (1, 2, 3)]
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(starts)]
    assert all(0.25 <= g <= 2.0 for g in gaps), gaps


def test_python_dash_m_runs_the_same_collector(netns: Netns, traffic: Traffic, tmp_path: Path) -> None:
    """`python -m xtcp_async --once` reports the same sockets as the console script."""
    out = tmp_path / "out.jsonl"
    netns.run([sys.executable, "-m", "xtcp_async", "--once", "--sink", f"file://{out}?format=jsonl",
               "--metrics-listen", ""])
    listed = _keys(_ss(netns, "-tanOH"), lambda s: s.key)
    assert _ours_without_bound(read_jsonl(out), traffic.info["bound_port"]) == listed


def test_namespace_helper_removes_its_namespace_even_when_the_block_fails() -> None:
    """harness.netns() deletes the namespace it made, and ends what runs in it, when the block raises."""
    reason = netns_unavailable_reason()
    if reason:
        skip_or_fail(reason)
    seen: list[tuple[str, subprocess.Popen[str], str]] = []

    def fail_inside() -> None:
        with make_netns() as ns:
            proc = ns.popen(["sleep", "60"])
            seen.append((ns.name, proc, _netns_list()))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    ((name, proc, listing_inside),) = seen
    assert name in listing_inside
    assert name not in _netns_list()
    assert proc.poll() is not None


def _netns_list() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
