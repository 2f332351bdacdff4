"""`xtcp-async top`: the rankings equal pandas over the same sockets, the text fits 100 columns, and
the subcommand leaves the service's own command line alone."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.support.asn import capture_batch, write_pfx2as
from tests.support.replay import recorded_source
from xtcp_async.enrich.stage import Enricher
from xtcp_async.netlink import constants as c
from xtcp_async.top.cli import build_parser, run_top
from xtcp_async.top.render import render


async def top_json(capsys: pytest.CaptureFixture[str], *argv: str, asn_db: Path | None = None) -> dict[str, Any]:
    """One --json refresh of the recorded 6.18 dump."""
    args = build_parser().parse_args(["--once", "--json", *argv])
    enricher = Enricher.load(str(asn_db) if asn_db else None, (24, 48))
    assert await run_top(args, enricher, (c.AF_INET, c.AF_INET6), c.ALL_STATES_MASK, source=recorded_source()) == 0
    out = capsys.readouterr().out
    view: dict[str, Any] = json.loads(out)
    return view


def rows_frame() -> pd.DataFrame:
    return pd.DataFrame.from_records(capture_batch().to_records())


async def test_states_and_ports_equal_pandas(capsys: pytest.CaptureFixture[str]) -> None:
    """Socket counts by state, and connections per listening port, equal pandas over the same rows."""
    view = await top_json(capsys)
    df = rows_frame()
    assert view["sockets"] == len(df)
    want_states = df.inet_diag_msg_state.map(c.TCP_STATE_NAMES).value_counts().to_dict()
    assert view["states"] == want_states
    listening = set(df.loc[df.inet_diag_msg_state == 10, "inet_diag_msg_socket_source_port"])
    conns = df[(df.inet_diag_msg_state != 10) & df.inet_diag_msg_socket_source_port.isin(listening)]
    want_ports = conns.inet_diag_msg_socket_source_port.value_counts()
    got_ports = {r["local_port"]: r["sockets"] for r in view["busiest_ports"]}
    assert got_ports == {int(p): int(n) for p, n in want_ports.items()}
    assert got_ports


async def test_worst_networks_by_rtt_equal_pandas(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The remote ASNs ranked by RTT p99 are pandas' ranking (lower quantile, listeners out, ≥ 3 sampled)."""
    view = await top_json(capsys, "-n", "10", asn_db=write_pfx2as(tmp_path / "p.txt"))
    enriched = Enricher.load(str(tmp_path / "p.txt"), None)(capture_batch())
    df = pd.DataFrame.from_records(enriched.to_records())
    df = df[(df.inet_diag_msg_state != 10) & (df.tcp_info_rtt.fillna(0) > 0)]
    p99 = df.groupby("inet_diag_msg_socket_dest_asn").tcp_info_rtt.agg(
        lambda s: (int(s.quantile(0.99, interpolation="lower")), len(s)))
    want = sorted(((int(asn), q) for asn, (q, n) in p99.items() if n >= 3), key=lambda x: -x[1])
    got = [(r["asn"], r["rtt_p99"]) for r in view["worst_asn_by_rtt_p99"]]
    assert got == want and len(got) >= 2


def test_text_fits_100_columns() -> None:
    """Even with long IPv6 prefixes and large numbers, no line is wider than 100 characters."""
    row = {"prefix": "2001:db8:ffff:ffff:ffff:ffff:ffff:fff0/124" * 2, "sockets": 10**9, "rtt_sockets": 10**9,
           "rtt_p50": 4 * 10**9, "rtt_p99": 4 * 10**9, "retransmits": 10**12, "segs_out": 10**12,
           "retransmit_share": 1.0}
    view = {"sockets": 10**9, "states": {name: 10**8 for name in c.TCP_STATES},
            "worst_prefix_by_rtt_p99": [row] * 5, "worst_prefix_by_retransmit_share": [row] * 5,
            "busiest_ports": [{**row, "local_port": 65535}] * 5}
    text = render(view, host="h" * 80, when="12:00:00")
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "Busiest listening ports" in text and "established" in text


@pytest.mark.parametrize("args", [["top", "--prefix-len", "40,48"], ["top", "--family", "ipx"],
                                  ["top", "--asn-db", "/nonexistent"], ["top", "--interval", "0"]])
def test_bad_top_options_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A bad option of top is one line and exit 2, like the service's."""
    from xtcp_async.cli import main

    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("xtcp-async top: config:")


def test_without_subcommand_the_cli_parses_as_before() -> None:
    """`top` is only a subcommand as the first word: the service's flags parse as they did."""
    from xtcp_async.cli import build_parser as service_parser

    ns = service_parser().parse_args(["--once", "--sink", "null://"])
    assert isinstance(ns, argparse.Namespace) and ns.once and ns.sink == ["null://"]
