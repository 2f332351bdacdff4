"""``xtcp-async top`` as plain text that fits 100 columns."""

from __future__ import annotations

from typing import Any

WIDTH = 100


def _ms(us: int) -> str:
    return f"{us / 1000:.1f}"


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _table(title: str, key_title: str, key: str, rows: list[dict[str, Any]]) -> list[str]:
    lines = [title]
    if not rows:
        return [*lines, "  (none)"]
    lines.append(f"  {key_title:<44} {'sockets':>8} {'rtt p50':>8} {'rtt p99':>8} {'retrans':>9} {'share':>8}")
    for r in rows:
        name = str(r[key])[:44]
        lines.append(f"  {name:<44} {r['sockets']:>8} {_ms(r['rtt_p50']):>8} {_ms(r['rtt_p99']):>8} "
                     f"{r['retransmits']:>9} {_pct(r['retransmit_share']):>8}")
    return lines


def render(view: dict[str, Any], *, host: str = "", when: str = "") -> str:
    """The view as text: every line at most 100 characters (RTTs in ms)."""
    lines = [f"xtcp-async top  {host}  {when}  sockets: {view['sockets']}".rstrip()]
    states = "  ".join(f"{k} {v}" for k, v in view["states"].items())
    while states:
        cut = states[:WIDTH - 2].rfind("  ") if len(states) > WIDTH - 2 else len(states)
        cut = cut if cut > 0 else WIDTH - 2
        lines.append("  " + states[:cut].strip())
        states = states[cut:].strip()
    lines.append("")
    for key, label in (("prefix", "remote network"), ("asn", "remote ASN")):
        if f"worst_{key}_by_rtt_p99" not in view:
            continue
        lines += _table(f"Worst {label}s by RTT p99 (ms)", label, key, view[f"worst_{key}_by_rtt_p99"])
        lines += _table(f"Worst {label}s by retransmitted share of segments", label, key,
                        view[f"worst_{key}_by_retransmit_share"])
        lines.append("")
    lines += _table("Busiest listening ports (connections)", "local port", "local_port", view["busiest_ports"])
    return "\n".join(line[:WIDTH] for line in lines) + "\n"
