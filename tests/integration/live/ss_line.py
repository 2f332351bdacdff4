"""Parse the one-line-per-socket output of ``ss -tinOHem`` / ``ss -tanOH``, and say what ss would print.

``-O`` puts every socket on one line, ``-H`` drops the header, ``-n`` keeps numbers numeric (rates
as ``%.0f`` bps, so kernel bytes/s = text / 8 exactly), ``-e`` adds uid/ino/sk/cgroup and the
shutdown arrows, ``-m`` adds ``skmem:(...)``, ``-i`` the tcp_info keys.

Two halves, deliberately independent of ``tests/support/ss_text.py`` (the two-line ``-tia`` oracle):

* ``parse_line`` keeps every value as the text ss printed;
* ``expected_text`` renders a decoded record (proto field names) the way iproute2 6.1's
  ``misc/ss.c`` prints it, and ``disagreements`` compares the two key by key. Exact text
  equality allows ss's ``%g`` rounding (µs → ms with 6 significant digits) and nothing else.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: ss's state names → kernel TCP state numbers (include/net/tcp_states.h).
STATES = {
    "ESTAB": 1, "SYN-SENT": 2, "SYN-RECV": 3, "FIN-WAIT-1": 4, "FIN-WAIT-2": 5, "TIME-WAIT": 6,
    "UNCONN": 7, "CLOSE-WAIT": 8, "LAST-ACK": 9, "LISTEN": 10, "CLOSING": 11,
}  # fmt: skip
#: Bare words ss prints for tcp_info flags (the cc name is the only other bare word).
FLAG_WORDS = frozenset({"ts", "sack", "ecn", "ecnseen", "fastopen", "app_limited"})
#: Keys whose value is the next token instead of after a colon.
SPACED_KEYS = frozenset({"send", "pacing_rate", "delivery_rate"})
#: Keys of ``skmem:(r0,rb131072,...)`` in print order.
SKMEM_KEYS = ("r", "rb", "t", "tb", "f", "w", "o", "bl", "d")
SKMEM_FIELDS = (
    "sk_mem_info_rmem_alloc", "sk_mem_info_rcv_buf", "sk_mem_info_wmem_alloc", "sk_mem_info_snd_buf",
    "sk_mem_info_fwd_alloc", "sk_mem_info_wmem_queued", "sk_mem_info_optmem", "sk_mem_info_backlog",
    "sk_mem_info_drops",
)  # fmt: skip
#: Timers that move on their own between two reads of an idle socket: never compared.
MOVING_KEYS = frozenset({"lastsnd", "lastrcv", "lastack"})
#: First-line -e keys that are not kernel netlink values (cgroup is a path looked up by ss).
NOT_COMPARED = frozenset({"cgroup", "v6only"})
U32_MAX = 0xFFFFFFFF
U64_MAX = 0xFFFFFFFFFFFFFFFF

Key = tuple[int, str, int, str, int]


class SsLineError(ValueError):
    """A line that is not ss -O output."""


@dataclass
class SsLine:
    """One socket as ss printed it: every value is the raw text."""

    state: str
    recv_q: str
    send_q: str
    local: tuple[str, int]
    peer: tuple[str, int]
    #: ``key:value`` and ``key value`` tokens; groups (skmem, bbr, dctcp) as dicts of text.
    values: dict[str, Any] = field(default_factory=dict)
    #: Bare flag words (ts, sack, app_limited, ...).
    flags: set[str] = field(default_factory=set)
    #: The congestion control name, when ss printed one.
    cc: str | None = None
    #: ``<->`` with ``-`` for a shut-down direction, when -e printed it.
    shutdown: str | None = None
    text: str = ""

    @property
    def interface(self) -> str | None:
        """The ``%ifname`` ss printed after the local address (sockets bound to a device), else None."""
        local = self.text.split()[3] if self.text.split()[0] in STATES else self.text.split()[2]
        host = local.rpartition(":")[0]
        return host.split("%", 1)[1] if "%" in host else None

    @property
    def key(self) -> Key:
        """(state number, local ip, local port, peer ip, peer port): how records are matched."""
        return (STATES[self.state], self.local[0], self.local[1], self.peer[0], self.peer[1])


def parse_endpoint(text: str) -> tuple[str, int]:
    """``127.0.0.1:80``, ``[::1]:80``, ``*:80``, ``0.0.0.0:*``, ``[fe80::1]%lo:80`` → (normalised ip, port)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise SsLineError(f"no port in endpoint {text!r}")
    host = host.split("%", 1)[0]  # ss appends %ifname for sockets bound to a device (see interface())
    if host.startswith("["):
        host = host[1:-1]
    # ss prints the IPv6 wildcard (without v6only) as "*"; IPv4's is "0.0.0.0".
    ip = ipaddress.ip_address("::" if host == "*" else host)
    return str(ip), 0 if port == "*" else int(port)


def _split_group(text: str) -> dict[str, str]:
    """``(bw:1bps,mrtt:0.1)`` → {"bw": "1bps", "mrtt": "0.1"}; ``skmem`` uses letter prefixes instead."""
    out: dict[str, str] = {}
    for part in text.strip("()").split(","):
        k, _, v = part.partition(":")
        out[k] = v
    return out


def _split_skmem(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.strip("()").split(","):
        i = len(part.rstrip("0123456789"))
        out[part[:i]] = part[i:]
    return out


def parse_line(line: str, state: str | None = None) -> SsLine:
    """Parse one ``ss -O`` line (with or without -i/-e/-m keys).

    With a state filter (``ss ... state established``) ss leaves the State column out: pass
    ``state`` (ss's name for it) to parse such lines.
    """
    tokens = line.split()
    if state is not None and tokens and tokens[0] not in STATES:
        tokens.insert(0, state)
    if len(tokens) < 5 or tokens[0] not in STATES:
        raise SsLineError(f"not an ss -O socket line: {line!r}")
    sock = SsLine(tokens[0], tokens[1], tokens[2], parse_endpoint(tokens[3]), parse_endpoint(tokens[4]),
                  text=line)
    rest = tokens[5:]
    i = 0
    while i < len(rest):
        tok = rest[i]
        i += 1
        if tok in SPACED_KEYS:
            if i >= len(rest):
                raise SsLineError(f"{tok!r} without a value: {line!r}")
            sock.values[tok] = rest[i]
            i += 1
        elif len(tok) == 3 and set(tok) <= set("<->"):
            sock.shutdown = tok
        elif ":" in tok:
            key, _, value = tok.partition(":")
            if key == "skmem":
                sock.values[key] = _split_skmem(value)
            elif key == "timer":
                name, expires, retrans = value.strip("()").split(",")
                sock.values[key] = {"name": name, "expires": expires, "retrans": retrans}
            elif value.startswith("("):
                sock.values[key] = _split_group(value)
            else:
                sock.values[key] = value
        elif tok in FLAG_WORDS:
            sock.flags.add(tok)
        elif sock.cc is None:
            sock.cc = tok
        else:
            raise SsLineError(f"two bare words {sock.cc!r} and {tok!r}: {line!r}")
    return sock


def parse_text(text: str, state: str | None = None) -> list[SsLine]:
    """Every socket line of ``ss -O`` output; blank lines and ``#`` comments are ignored."""
    return [parse_line(ln, state) for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


# --- what ss would print for a record ---------------------------------------------------------------


def ms(us: int) -> str:
    """``%g`` of µs/1000: how ss prints rtt, rttvar, rto, ato, minrtt, rcv_rtt and bbr's mrtt."""
    return "%g" % (us / 1000)  # C's %g rounding is the point


def bps(bytes_per_s: int | float) -> str:
    """``sprint_bw(v * 8.)`` under -n: ``%.0f`` + ``bps``."""
    return "%.0fbps" % (float(bytes_per_s) * 8.0)


def record_key(rec: Mapping[str, Any]) -> Key:
    """The same key as ``SsLine.key`` for a decoded record."""
    return (
        int(rec["inet_diag_msg_state"]),
        str(ipaddress.ip_address(rec["inet_diag_msg_socket_source"])),
        int(rec["inet_diag_msg_socket_source_port"]),
        str(ipaddress.ip_address(rec["inet_diag_msg_socket_destination"])),
        int(rec["inet_diag_msg_socket_destination_port"]),
    )


def expected_text(rec: Mapping[str, Any]) -> tuple[dict[str, Any], set[str], str | None]:
    """(values, flags, cc) that ss 6.1 prints for the tcp_info, skmem and cc attributes of ``rec``."""
    def g(name: str) -> int:
        return int(rec.get("tcp_info_" + name, 0))  # ss zero-fills fields the kernel did not send

    out: dict[str, Any] = {}
    flags: set[str] = set()
    if SKMEM_FIELDS[0] in rec:
        out["skmem"] = {k: str(rec[f]) for k, f in zip(SKMEM_KEYS, SKMEM_FIELDS, strict=True) if f in rec}
    cc = rec.get("congestion_algorithm_string") or None
    if "tcp_info_state" not in rec:
        return out, flags, cc
    opts = g("options")
    flags |= {w for bit, w in ((1, "ts"), (2, "sack"), (8, "ecn"), (16, "ecnseen"), (32, "fastopen")) if opts & bit}
    if g("delivery_rate_app_limited"):
        flags.add("app_limited")
    if opts & 4:
        out["wscale"] = f"{g('send_scale')},{g('rcv_scale')}"
    if g("rto") and g("rto") != 3000000:
        out["rto"] = ms(g("rto"))
    if g("rtt"):
        out["rtt"] = f"{ms(g('rtt'))}/{ms(g('rtt_var'))}"
    for key, name in (("ato", "ato"), ("rcv_rtt", "rcv_rtt")):
        if g(name):
            out[key] = ms(g(name))
    if g("min_rtt") and g("min_rtt") != U32_MAX:
        out["minrtt"] = ms(g("min_rtt"))
    if 0 < g("snd_ssthresh") < 0xFFFF:
        out["ssthresh"] = str(g("snd_ssthresh"))
    plain = (
        ("backoff", "backoff"), ("mss", "snd_mss"), ("pmtu", "pmtu"), ("rcvmss", "rcv_mss"),
        ("advmss", "adv_mss"), ("cwnd", "snd_cwnd"), ("bytes_sent", "bytes_sent"),
        ("bytes_retrans", "bytes_retrans"), ("bytes_acked", "bytes_acked"),
        ("bytes_received", "bytes_received"), ("segs_out", "segs_out"), ("segs_in", "segs_in"),
        ("data_segs_out", "data_segs_out"), ("data_segs_in", "data_segs_in"), ("delivered", "delivered"),
        ("delivered_ce", "delivered_ce"), ("unacked", "unacked"), ("lost", "lost"),
        ("dsack_dups", "dsack_dups"), ("fackets", "fackets"), ("reord_seen", "reord_seen"),
        ("rcv_space", "rcv_space"), ("rcv_ssthresh", "rcv_ssthresh"), ("notsent", "not_sent_bytes"),
        ("rcv_ooopack", "rcv_ooopack"), ("snd_wnd", "snd_wnd"), ("rcv_wnd", "rcv_wnd"), ("rehash", "rehash"),
    )  # fmt: skip
    for key, name in plain:
        if g(name):
            out[key] = str(g(name))
    if g("sacked") and rec["inet_diag_msg_state"] != STATES["LISTEN"]:  # LISTEN: sacked is the backlog
        out["sacked"] = str(g("sacked"))
    if g("retrans") or g("total_retrans"):
        out["retrans"] = f"{g('retrans')}/{g('total_retrans')}"
    if g("reordering") != 3:
        out["reordering"] = str(g("reordering"))
    if "bbr_info_bw_lo" in rec:
        bbr = {"bw": bps((int(rec["bbr_info_bw_hi"]) << 32) | int(rec["bbr_info_bw_lo"])),
               "mrtt": ms(int(rec["bbr_info_min_rtt"]))}
        for gain in ("pacing_gain", "cwnd_gain"):
            if rec[f"bbr_info_{gain}"]:
                bbr[gain] = "%g" % (int(rec[f"bbr_info_{gain}"]) / 256.0)
        out["bbr"] = bbr
    if "dctcp_info_enabled" in rec:
        out["dctcp"] = ({k: str(rec[f"dctcp_info_{k}"]) for k in ("ce_state", "alpha", "ab_ecn", "ab_tot")}
                        if rec["dctcp_info_enabled"] else "fallback_mode")
    rtt = float(g("rtt"))
    if rec.get("vegas_info_enabled") and rec.get("vegas_info_rtt") not in (0, 0x7FFFFFFF, None):
        rtt = float(rec["vegas_info_rtt"])
    if rtt > 0 and g("snd_mss") and g("snd_cwnd"):
        # Same double arithmetic, same order, as ss: cwnd * mss * 8000000. / rtt.
        out["send"] = "%.0fbps" % (float(g("snd_cwnd")) * float(g("snd_mss")) * 8000000.0 / rtt)
    pacing, max_pacing = g("pacing_rate"), g("max_pacing_rate")
    if pacing and pacing != U64_MAX:
        out["pacing_rate"] = bps(pacing)
        if max_pacing and max_pacing != U64_MAX:
            out["pacing_rate"] += "/" + bps(max_pacing)
    if g("delivery_rate"):
        out["delivery_rate"] = bps(g("delivery_rate"))
    busy = g("busy_time")
    if busy:
        out["busy"] = f"{busy // 1000}ms"
        for key in ("rwnd_limited", "sndbuf_limited"):
            if g(key):
                out[key] = f"{g(key) // 1000}ms({100.0 * g(key) / busy:.1f}%)"
    return out, flags, cc


def _shutdown_arrows(value: int) -> str:
    return ("-" if value & 1 else "<") + "-" + ("-" if value & 2 else ">")


#: ss's timer names by inet_diag_msg.idiag_timer (ss prints "unknown" above 4).
TIMER_NAMES = ("off", "on", "keepalive", "timewait", "persist", "unknown")

#: Keys newer than ss 6.1 (it never prints them): compared when printed, not required.
NEWER_SS_KEYS = frozenset({"rcv_wnd", "rehash"})


def disagreements(rec: Mapping[str, Any], sock: SsLine, ifindex: Mapping[str, int] | None = None) -> list[str]:
    """Every way ``rec`` (a decoded record) differs from what ss printed for the same socket; [] = agree.

    ``ifindex`` maps interface names to indexes in the socket's namespace (default: only lo = 1).
    """
    bad: list[str] = []

    def check(what: str, ss_value: Any, rec_value: Any) -> None:
        if ss_value != rec_value:
            bad.append(f"{what}: ss printed {ss_value!r}, the record renders as {rec_value!r}")

    check("state", sock.state, {v: k for k, v in STATES.items()}.get(int(rec["inet_diag_msg_state"])))
    check("recv-q", sock.recv_q, str(rec["inet_diag_msg_rqueue"]))
    check("send-q", sock.send_q, str(rec["inet_diag_msg_wqueue"]))
    header = {"uid": "inet_diag_msg_uid", "ino": "inet_diag_msg_inode"}
    for key, name in header.items():
        if key in sock.values or key == "ino":
            check(key, sock.values.get(key), str(rec[name]))
        else:  # -e prints uid only when it is not 0
            check(key, "0", str(rec[name]))
    names = ifindex or {"lo": 1}
    check("interface", names.get(sock.interface, -1) if sock.interface else 0,
          int(rec["inet_diag_msg_socket_interface"]))
    check("sk (cookie)", sock.values.get("sk"), f"{int(rec['inet_diag_msg_socket_cookie']):x}")
    if "fwmark" in sock.values:
        check("fwmark", sock.values["fwmark"], f"0x{int(rec.get('socket_mark', 0)):x}")
    if "timer" in sock.values:  # expires counts down between the two reads: name and retrans only
        timer = int(rec["inet_diag_msg_timer"])
        check("timer", {k: v for k, v in sock.values["timer"].items() if k != "expires"},
              {"name": TIMER_NAMES[min(timer, 5)], "retrans": str(rec["inet_diag_msg_retrans"])})
    if sock.shutdown is not None:
        check("shutdown", sock.shutdown, _shutdown_arrows(int(rec.get("shutdown_state", 0))))
    want, want_flags, want_cc = expected_text(rec)
    check("flags", sock.flags, want_flags)
    check("congestion", sock.cc, want_cc)
    skip = MOVING_KEYS | NOT_COMPARED | {"uid", "ino", "sk", "fwmark", "timer"}
    for key in sorted(set(sock.values) | set(want)):
        if key in skip or (key in NEWER_SS_KEYS and key not in sock.values):
            continue
        check(key, sock.values.get(key), want.get(key))
    return bad


def problems_against_ss(records: Mapping[Key, Mapping[str, Any]], detailed: list[SsLine]) -> list[str]:
    """For each socket ss printed: not reported, or each value that disagrees (see ``disagreements``)."""
    problems = []
    for sock in detailed:
        rec = records.get(sock.key)
        if rec is None:
            problems.append(f"{sock.key}: not reported by the collector")
            continue
        problems += [f"{sock.key}: {p}" for p in disagreements(rec, sock)]
    return problems
