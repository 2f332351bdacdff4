"""Aggregates computed the slow, independent way: pandas over the per-socket JSON records.

Nothing here uses xtcp_async.aggregate: the records come from SocketBatch.to_records (the
reference per-row view), groups and statistics from pandas, deltas from a merge on the cookie.
The definitions are the ones documented in proto/xtcp_flat_record.proto (XtcpAggregateRecord).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

STATES = {1: "established", 2: "syn-sent", 3: "syn-recv", 4: "fin-wait-1", 5: "fin-wait-2", 6: "time-wait",
          7: "close", 8: "close-wait", 9: "last-ack", 10: "listen", 11: "closing", 12: "new-syn-recv",
          13: "bound-inactive"}
COUNTERS = ("tcp_info_bytes_acked", "tcp_info_bytes_received")


def frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per socket; fields the kernel did not send are NaN."""
    df = pd.DataFrame.from_records(records)
    for col in ("tcp_info_rtt", "tcp_info_min_rtt", "tcp_info_total_retrans", "tcp_info_segs_out",
                "tcp_info_delivery_rate", "tcp_info_delivery_rate_app_limited", "tcp_info_busy_time",
                "tcp_info_rwnd_limited", "tcp_info_sndbuf_limited", *COUNTERS,
                "inet_diag_msg_socket_dest_asn", "congestion_algorithm_string"):
        if col not in df:
            df[col] = math.nan
    return df


def add_keys(df: pd.DataFrame, keys: tuple[str, ...]) -> list[str]:
    """Key columns named as XtcpAggregateRecord's fields; returns their names."""
    names = []
    listening = set(df.loc[df.inet_diag_msg_state == 10, "inet_diag_msg_socket_source_port"])
    for k in keys:
        if k == "asn":
            df["asn"] = df.inet_diag_msg_socket_dest_asn.fillna(0).astype("int64")
        elif k == "prefix":
            df["prefix"] = df.inet_diag_msg_socket_dest_prefix + "/" + \
                df.inet_diag_msg_socket_dest_prefix_length.astype("int64").astype(str)
        elif k == "port":
            sport = df.inet_diag_msg_socket_source_port
            df["local_port"] = sport.where(sport.isin(listening), 0).astype("int64")
            k = "local_port"
        elif k == "cc":
            df["congestion_algorithm"] = df.congestion_algorithm_string.fillna("")
            k = "congestion_algorithm"
        elif k == "state":
            df["state"] = df.inet_diag_msg_state.map(STATES)
        else:
            continue
        names.append(k)
    return names


def with_deltas(cur: pd.DataFrame, prev: pd.DataFrame | None) -> pd.DataFrame:
    """Per socket, each counter's increase since ``prev`` (cookies in both, counters in both)."""
    cur = cur.copy()
    if prev is None:
        prev = cur.iloc[0:0]
    p = prev[["inet_diag_msg_socket_cookie", *COUNTERS]].dropna().drop_duplicates(
        "inet_diag_msg_socket_cookie", keep="last")
    merged = cur.merge(p, on="inet_diag_msg_socket_cookie", how="left", suffixes=("", "_prev"))
    seen = merged[[f"{c}_prev" for c in COUNTERS]].notna().all(axis=1) & merged[list(COUNTERS)].notna().all(axis=1)
    for c, out in zip(COUNTERS, ("bytes_acked_delta", "bytes_received_delta"), strict=True):
        d = merged[c] - merged[f"{c}_prev"]
        cur[out] = d.where(seen & (d >= 0), 0).to_numpy()
    cur["delta_seen"] = seen.to_numpy()
    return cur


def _q(s: pd.Series, q: float) -> int:
    return int(s.quantile(q, interpolation="lower")) if len(s) else 0


def _share(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else 0.0


def stats(g: pd.DataFrame) -> dict[str, Any]:
    """The statistics of one group."""
    rtt = g.tcp_info_rtt
    measured = rtt.notna() & (rtt.fillna(0) > 0)
    out: dict[str, Any] = {"sockets": len(g), "rtt_sockets": int(measured.sum())}
    for name in ("rtt", "min_rtt"):
        v = g.loc[measured & g[f"tcp_info_{name}"].notna(), f"tcp_info_{name}"]
        for q in (0.5, 0.9, 0.99):
            out[f"{name}_p{round(q * 100)}"] = _q(v, q)
        out[f"{name}_mean"] = float(v.mean()) if len(v) else 0.0
    rate = g.loc[measured & g.tcp_info_delivery_rate.notna(), "tcp_info_delivery_rate"]
    out["delivery_rate_p50"], out["delivery_rate_p90"] = _q(rate, 0.5), _q(rate, 0.9)
    out["retransmits"] = int(g.tcp_info_total_retrans.fillna(0).sum())
    out["segs_out"] = int(g.tcp_info_segs_out.fillna(0).sum())
    out["retransmit_share"] = _share(out["retransmits"], out["segs_out"])
    out["bytes_acked"] = int(g.tcp_info_bytes_acked.fillna(0).sum())
    out["bytes_received"] = int(g.tcp_info_bytes_received.fillna(0).sum())
    out["bytes_acked_delta"] = int(g.bytes_acked_delta.sum())
    out["bytes_received_delta"] = int(g.bytes_received_delta.sum())
    out["delta_sockets"] = int(g.delta_seen.sum())
    app = g.loc[measured & g.tcp_info_delivery_rate_app_limited.notna(), "tcp_info_delivery_rate_app_limited"]
    out["app_limited_share"] = _share(app.sum(), len(app))
    busy = int(g.tcp_info_busy_time.fillna(0).sum())
    out["busy_time_us"] = busy
    out["rwnd_limited_share"] = _share(int(g.tcp_info_rwnd_limited.fillna(0).sum()), busy)
    out["sndbuf_limited_share"] = _share(int(g.tcp_info_sndbuf_limited.fillna(0).sum()), busy)
    out["sample_rate"] = 0.0
    if "sample_rate_ppm" in g and g.attrs.get("sampled"):
        out["sample_rate"] = _share(len(g), float((1e6 / g.sample_rate_ppm).sum()))
    return out


def oracle(cur: list[dict[str, Any]], keys: tuple[str, ...],
           prev: list[dict[str, Any]] | None = None) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Group key values → statistics, for every group of ``cur``."""
    df = with_deltas(frame(cur), frame(prev) if prev else None)
    sampled = "sample_rate_ppm" in df and bool((df.sample_rate_ppm < 1_000_000).any())
    names = add_keys(df, keys)
    df.attrs["sampled"] = sampled
    if not names:
        return {(): stats(df)}
    return {k if isinstance(k, tuple) else (k,): stats(g) for k, g in df.groupby(names, sort=False, dropna=False)}


def key_of(rec: dict[str, Any], keys: tuple[str, ...]) -> tuple[Any, ...]:
    """The group key of one of our aggregate records, in the oracle's order."""
    field = {"port": "local_port", "cc": "congestion_algorithm"}
    return tuple(rec.get(field.get(k, k), 0 if k in ("asn", "port") else "")
                 for k in keys if k in ("asn", "prefix", "port", "cc", "state"))
