"""Parse `ss -tia` text, and render kernel values the way ss prints them.

The ss text that ships with each capture is the expected-value oracle for the decoder. Two directions:

* ``parse_ss_text`` turns the text into one dict per socket, every value kept as the raw text ss printed
  (so nothing is lost to a premature float conversion);
* ``render_info_line`` / ``render_header`` do what iproute2's ``misc/ss.c`` does to a socket's kernel
  values (by xtcp2 record field name), giving the exact text ss would print. Comparing rendered text with
  parsed text is exact equality *including* ss's rounding (``%g`` = 6 significant digits, ``%.0f``,
  integer division of µs to ms, ...), so no tolerance has to be guessed.

The ``to_kernel_*`` helpers go the other way (text → kernel units) for readable assertions and reports;
where ss rounds they are approximate, and ``ORACLE.md`` says by how much.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# One parsed socket: scalar keys map to raw text, flags to True, groups (skmem, bbr, dctcp, timer) to dicts.
SsSocket = dict[str, Any]

# --- tokenising -----------------------------------------------------------------------------------


def _tokens(line: str) -> Iterator[str]:
    """Split on spaces, keeping parenthesised groups (users:(("a b",pid=1,fd=3))) and quotes whole."""
    depth = 0
    quoted = False
    cur: list[str] = []
    for ch in line:
        if ch == '"' and depth:
            quoted = not quoted
        elif not quoted:
            if ch == "(":
                depth += 1
            elif ch == ")" and depth:
                depth -= 1
            elif ch in " \t" and depth == 0:
                if cur:
                    yield "".join(cur)
                    cur = []
                continue
        cur.append(ch)
    if cur:
        yield "".join(cur)


def _group(text: str) -> dict[str, str]:
    """Split ``(k:v,k:v)`` (bbr, dctcp) into a dict of raw text values."""
    inner = text.strip("()")
    out: dict[str, str] = {}
    for part in inner.split(","):
        key, _, value = part.partition(":")
        out[key] = value
    return out


_SKMEM_KEY = re.compile(r"^([a-z]+)(\d+)$")


def _skmem(text: str) -> dict[str, str]:
    """Split ``(r0,rb1000000,t0,...)`` into {"r": "0", "rb": "1000000", ...}."""
    out: dict[str, str] = {}
    for part in text.strip("()").split(","):
        m = _SKMEM_KEY.match(part)
        if m is None:
            raise ValueError(f"bad skmem item {part!r} in {text!r}")
        out[m[1]] = m[2]
    return out


# --- endpoints ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One printed ``addr[%iface]:port`` as ss shows it."""

    raw: str
    addr: str  # without brackets; "*" for the IPv6 wildcard (ss prints "*" unless the socket is v6only)
    port: int  # "*" (port 0) → 0
    iface: str | None

    @property
    def is_v6_text(self) -> bool:
        """True when the text can only be IPv6 (bracketed, or the ``*`` wildcard)."""
        return self.addr == "*" or ":" in self.addr

    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """The address as an ``ipaddress`` object; ``*`` is ``::`` (ss prints IPv4 any as 0.0.0.0)."""
        return ipaddress.ip_address("::" if self.addr == "*" else self.addr)


def parse_endpoint(text: str) -> Endpoint:
    """Parse ss's ``sock_addr_print`` output: ``1.2.3.4:80``, ``[::1]:80``, ``*:80``, ``a%eth0:*``."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError(f"no port in endpoint {text!r}")
    iface = None
    if "%" in host:
        host, _, iface = host.partition("%")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return Endpoint(text, host, 0 if port == "*" else int(port), iface)


# --- parsing --------------------------------------------------------------------------------------

STATES = {
    "ESTAB": 1, "SYN-SENT": 2, "SYN-RECV": 3, "FIN-WAIT-1": 4, "FIN-WAIT-2": 5, "TIME-WAIT": 6,
    "UNCONN": 7, "CLOSE-WAIT": 8, "LAST-ACK": 9, "LISTEN": 10, "CLOSING": 11,
}  # fmt: skip
"""ss's state names → kernel TCP state numbers (include/net/tcp_states.h; ss prints UNCONN for CLOSE)."""

# Bare words on the info line. Any other bare word is the congestion-control name (INET_DIAG_CONG).
FLAG_WORDS = frozenset({"ts", "sack", "ecn", "ecnseen", "fastopen", "app_limited", "bidir"})
# Keys printed as "key value" (space, not colon): the value is the next token.
SPACED_KEYS = frozenset({"send", "pacing_rate", "delivery_rate"})


class SsParseError(ValueError):
    """The ss text is not in the layout ss prints."""


def _parse_first_line(line: str, line_no: int, has_process_column: bool) -> SsSocket:
    toks = list(_tokens(line))
    if len(toks) < 5:
        raise SsParseError(f"line {line_no}: expected state, queues and two endpoints: {line!r}")
    state, recv_q, send_q, local, peer = toks[:5]
    if state not in STATES:
        raise SsParseError(f"line {line_no}: unknown state {state!r}")
    sock: SsSocket = {
        "line_no": line_no,
        "state": state,
        "recv_q": recv_q,
        "send_q": send_q,
        "local": parse_endpoint(local),
        "peer": parse_endpoint(peer),
    }
    for tok in toks[5:]:
        if tok in ("<->", "<--", "-->", "---"):
            sock["shutdown"] = tok
        elif tok.startswith("timer:("):
            name, expires, retrans = tok[len("timer:(") : -1].split(",")
            sock["timer"] = {"name": name, "expires": expires, "retrans": retrans}
        elif tok.startswith("users:"):
            sock["users"] = tok[len("users:") :]
        elif ":" in tok:
            key, _, value = tok.partition(":")
            # cgroup is printed twice by some ss builds (once by -e details, once by --cgroup); keep one.
            sock[key] = value
        else:
            raise SsParseError(f"line {line_no}: unexpected token {tok!r}")
    _ = has_process_column
    return sock


def _parse_info_line(line: str, line_no: int, sock: SsSocket) -> None:
    toks = list(_tokens(line))
    i = 0
    while i < len(toks):
        tok = toks[i]
        i += 1
        if tok in SPACED_KEYS:
            if i >= len(toks):
                raise SsParseError(f"line {line_no}: {tok!r} without a value")
            value = toks[i]
            i += 1
            if tok == "pacing_rate" and "/" in value:
                value, _, sock["max_pacing_rate"] = value.partition("/")
            sock[tok] = value
        elif tok.startswith("skmem:("):
            sock["skmem"] = _skmem(tok[len("skmem:") :])
        elif tok.startswith("mem:("):
            sock["mem"] = _skmem(tok[len("mem:") :])
        elif tok.startswith("bbr:("):
            sock["bbr"] = _group(tok[len("bbr:") :])
        elif tok.startswith("dctcp:"):
            rest = tok[len("dctcp:") :]
            sock["dctcp"] = _group(rest) if rest.startswith("(") else {"fallback_mode": "1"}
        elif tok in FLAG_WORDS:
            sock[tok] = True
        elif ":" in tok:
            key, _, value = tok.partition(":")
            if key in ("rwnd_limited", "sndbuf_limited"):
                # "rwnd_limited:12ms(34.5%)"
                ms, _, pct = value.partition("(")
                sock[key] = ms
                sock[key + "_pct"] = pct.rstrip(")%")
            else:
                sock[key] = value
        elif re.fullmatch(r"[a-z][a-z0-9_]*", tok) and "cong" not in sock:
            sock["cong"] = tok
        else:
            raise SsParseError(f"line {line_no}: unexpected token {tok!r}")


def parse_ss_text(text: str) -> list[SsSocket]:
    """Parse ``ss -tia`` (or ``ss -ti``) output: a header, then two lines per socket."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("State"):
        raise SsParseError("first line is not ss's header (State Recv-Q Send-Q ...)")
    has_process = "Process" in lines[0]
    sockets: list[SsSocket] = []
    cur: SsSocket | None = None
    for n, line in enumerate(lines[1:], start=2):
        if line.startswith("\t"):
            if cur is None or "_info_seen" in cur:
                raise SsParseError(f"line {n}: info line without a socket line")
            _parse_info_line(line, n, cur)
            cur["_info_seen"] = True
        elif line.strip():
            cur = _parse_first_line(line, n, has_process)
            sockets.append(cur)
        else:
            raise SsParseError(f"line {n}: empty line")
    for s in sockets:
        if not s.pop("_info_seen", False):
            raise SsParseError(f"line {s['line_no']}: socket without its info line")
    return sockets


def parse_ss_file(path: Path) -> list[SsSocket]:
    """Parse an ss text file (bytes decoded leniently: process names may hold any byte)."""
    return parse_ss_text(path.read_bytes().decode("utf-8", errors="replace"))


def count_socket_lines(text: str) -> int:
    """Number of socket lines in ss text: every non-empty line after the header not starting with a tab."""
    return sum(1 for line in text.splitlines()[1:] if line.strip() and not line.startswith("\t"))


# --- socket identity ------------------------------------------------------------------------------


def cookie_of(sock: SsSocket) -> int | None:
    """The socket cookie ss prints as ``sk:%llx`` (cookie[1]<<32 | cookie[0]), if ss printed details."""
    sk = sock.get("sk")
    return int(sk, 16) if isinstance(sk, str) else None


def address_key(sock: SsSocket) -> tuple[str, int, str, int]:
    """(local ip, local port, peer ip, peer port) with IPs normalised by ``ipaddress``."""
    local: Endpoint = sock["local"]
    peer: Endpoint = sock["peer"]
    return (str(local.ip()), local.port, str(peer.ip()), peer.port)


# --- ss units → kernel units ----------------------------------------------------------------------


def to_kernel_us(ms_text: str) -> int:
    """ss prints µs fields (rtt, rttvar, rto, ato, minrtt, rcv_rtt, bbr mrtt) as ``%g`` of µs/1000.

    Exact for values below 1,000,000 µs (``%g`` keeps 6 significant digits); above that the last digits
    are lost and the result is the nearest value ss could have printed.
    """
    return round(float(ms_text) * 1000)


def to_kernel_rtt(rtt_text: str) -> tuple[int, int]:
    """``rtt:41.5/20.25`` → (tcpi_rtt, tcpi_rttvar) in µs."""
    rtt, _, var = rtt_text.partition("/")
    return to_kernel_us(rtt), to_kernel_us(var)


_BPS = re.compile(r"^(?P<num>[0-9.e+]+)(?P<unit>[kKMGT]?)bps$")
_UNIT = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def to_kernel_bytes_per_s(bps_text: str) -> tuple[int, int]:
    """A printed rate (``13107200000bps``, ``9.92Mbps``, ``8.0Kbps``) → (low, high) bytes/s bounds.

    ss prints ``rate_bytes * 8.0`` through ``sprint_bw``: ``%.0f`` when numeric (the fixtures), so
    low == high == text/8 exactly; otherwise ``%.3g`` (current ss) or ``%.1f`` (older ss) with a k/K/M/G/T
    suffix, so the kernel value lies within half a unit of the last printed digit.
    """
    m = _BPS.match(bps_text)
    if m is None:
        raise ValueError(f"not an ss rate: {bps_text!r}")
    num, unit = m["num"], m["unit"]
    scale = _UNIT[unit]
    if not unit:
        bits = float(num)
        value = math.floor(bits / 8 + 0.5)
        return value, value
    decimals = len(num.partition(".")[2])
    half = 0.5 * 10.0**-decimals * scale
    bits = float(num) * scale
    return math.floor((bits - half) / 8), math.ceil((bits + half) / 8)


def to_kernel_busy_us(ms_text: str) -> tuple[int, int]:
    """``busy:12ms`` (µs // 1000) → [low, high] µs bounds: ss truncates, so high = low + 999."""
    ms = int(ms_text.removesuffix("ms"))
    return ms * 1000, ms * 1000 + 999


def to_kernel_timer_ms(text: str) -> tuple[int, int]:
    """Invert ``print_ms_timer``: ``2.865ms`` → 2865; ``10sec`` → [10000, 10999]; ``1min13sec`` ...

    Returns (low, high) milliseconds; ss drops the milliseconds above 9 s and the seconds above 9 min.
    """
    if text == "":
        return 0, 0
    m = re.fullmatch(r"(?:(\d+)min)?(?:(\d+)(?:sec|\.))?(?:(\d{3})ms)?", text)
    if m is None:
        raise ValueError(f"not an ss timer: {text!r}")
    minutes, secs, msecs = (int(g) if g else 0 for g in m.groups())
    low = minutes * 60000 + secs * 1000 + msecs
    if minutes > 9:
        return low, low + 59999
    if minutes:
        return low, low + 999
    if secs > 9:
        return low, low + 999
    return low, low


# Keys of the info line that come from kernel data (render_info_line can produce every one of them).
INFO_KEYS = frozenset({
    "skmem", "mem", "ts", "sack", "ecn", "ecnseen", "fastopen", "cong", "wscale", "rto", "backoff", "rtt",
    "ato", "mss", "pmtu", "rcvmss", "advmss", "cwnd", "ssthresh", "bytes_sent", "bytes_retrans",
    "bytes_acked", "bytes_received", "segs_out", "segs_in", "data_segs_out", "data_segs_in", "dctcp", "bbr",
    "send", "lastsnd", "lastrcv", "lastack", "pacing_rate", "max_pacing_rate", "delivery_rate", "delivered",
    "delivered_ce", "app_limited", "busy", "rwnd_limited", "rwnd_limited_pct", "sndbuf_limited",
    "sndbuf_limited_pct", "unacked", "retrans", "lost", "sacked", "dsack_dups", "fackets", "reordering",
    "reord_seen", "rcv_rtt", "rcv_space", "rcv_ssthresh", "notsent", "minrtt", "rcv_ooopack", "snd_wnd",
    "rcv_wnd", "rehash",
})  # fmt: skip

# --- kernel values → ss text ------------------------------------------------------------------------
# Each function mirrors one printf of iproute2 misc/ss.c (tcp_show_info, tcp_stats_print,
# print_skmeminfo, tcp_timer_print/print_ms_timer, inet_show_sock, sock_details_print). Python's
# "%g" and "%.0f" round like C's printf, so the rendered text is byte-identical to what ss printed.

U32_MAX = 0xFFFFFFFF
U64_MAX = 0xFFFFFFFFFFFFFFFF


def fmt_ms(us: int) -> str:
    """``%g`` of µs/1000: how ss prints rtt, rttvar, rto, ato, minrtt, rcv_rtt, bbr mrtt."""
    return "%g" % (us / 1000)


def fmt_bw(bytes_per_s: int, *, numeric: bool = True) -> str:
    """A kernel rate in bytes/s as ss prints it: ``sprint_bw(rate * 8.)``."""
    return fmt_bits(float(bytes_per_s) * 8.0, numeric=numeric)


def fmt_bits(bw: float, *, numeric: bool = True) -> str:
    """``sprint_bw``: ``%.0f`` with -n (the fixtures), else ``%.3g`` with a k/M/G/T suffix."""
    if numeric:
        return "%.0f" % bw  # noqa: UP031
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if bw >= limit:
            return "%.3g%s" % (bw / limit, suffix)  # noqa: UP031
    return "%g" % bw  # noqa: UP031


def fmt_ms_timer(ms: int) -> str:
    """``print_ms_timer``: 2865 → ``2.865ms``, 10432 → ``10sec``, 73000 → ``1min13sec``, 0 → ``""``."""
    secs, msecs = divmod(ms, 1000)
    minutes, secs = divmod(secs, 60)
    out = ""
    if minutes:
        msecs = 0
        out += f"{minutes}min"
        if minutes > 9:
            secs = 0
    if secs:
        if secs > 9:
            msecs = 0
        out += f"{secs}{'.' if msecs else 'sec'}"
    if msecs:
        out += f"{msecs:03d}ms"
    return out


def _g(rec: Mapping[str, Any], name: str) -> int:
    value = rec.get(name, 0)
    return int(value) if value is not None else 0


def render_info_line(rec: Mapping[str, Any], *, numeric: bool = True, options: bool = True) -> dict[str, Any]:
    """What ss's info line would show for a decoded record (xtcp2 field names), key → text.

    Keys and value shapes match ``parse_ss_text``. Absent tcp_info fields count as zero, as ss zero-fills
    a short tcp_info (``len < sizeof`` → memset) before printing. ``options`` is ss's -o: only then does
    it print the ts/sack/ecn/ecnseen/fastopen words. ``numeric`` is -n (rates as plain ``%.0f``).
    """
    out: dict[str, Any] = {}
    if "sk_mem_info_rmem_alloc" in rec:
        sk = {
            "r": "sk_mem_info_rmem_alloc", "rb": "sk_mem_info_rcv_buf", "t": "sk_mem_info_wmem_alloc",
            "tb": "sk_mem_info_snd_buf", "f": "sk_mem_info_fwd_alloc", "w": "sk_mem_info_wmem_queued",
            "o": "sk_mem_info_optmem", "bl": "sk_mem_info_backlog", "d": "sk_mem_info_drops",
        }  # fmt: skip
        out["skmem"] = {k: str(rec[f]) for k, f in sk.items() if f in rec}
    elif "mem_info_rmem" in rec:
        out["mem"] = {
            k: str(rec[f"mem_info_{f}"])
            for k, f in (("r", "rmem"), ("w", "wmem"), ("f", "fmem"), ("t", "tmem"))
        }
    if "tcp_info_state" not in rec:
        return out
    g = lambda name: _g(rec, "tcp_info_" + name)  # noqa: E731 - local shorthand
    opts = g("options")
    for bit, word in ((1, "ts"), (2, "sack"), (8, "ecn"), (16, "ecnseen"), (32, "fastopen")):
        if options and opts & bit:
            out[word] = True
    cong = rec.get("congestion_algorithm_string")
    if cong:
        out["cong"] = cong
    if opts & 4:
        out["wscale"] = f"{g('send_scale')},{g('rcv_scale')}"
    if g("rto") and g("rto") != 3000000:
        out["rto"] = fmt_ms(g("rto"))
    if g("backoff"):
        out["backoff"] = str(g("backoff"))
    if g("rtt"):
        out["rtt"] = f"{fmt_ms(g('rtt'))}/{fmt_ms(g('rtt_var'))}"
    if g("ato"):
        out["ato"] = fmt_ms(g("ato"))
    for key, name in (
        ("mss", "snd_mss"),
        ("pmtu", "pmtu"),
        ("rcvmss", "rcv_mss"),
        ("advmss", "adv_mss"),
        ("cwnd", "snd_cwnd"),
    ):
        if g(name):
            out[key] = str(g(name))
    if 0 < g("snd_ssthresh") < 0xFFFF:
        out["ssthresh"] = str(g("snd_ssthresh"))
    for key in (
        "bytes_sent",
        "bytes_retrans",
        "bytes_acked",
        "bytes_received",
        "segs_out",
        "segs_in",
        "data_segs_out",
        "data_segs_in",
    ):
        if g(key):
            out[key] = str(g(key))
    if "dctcp_info_enabled" in rec:
        if _g(rec, "dctcp_info_enabled"):
            out["dctcp"] = {
                k: str(_g(rec, f"dctcp_info_{k}")) for k in ("ce_state", "alpha", "ab_ecn", "ab_tot")
            }
        else:
            out["dctcp"] = {"fallback_mode": "1"}
    if "bbr_info_bw_lo" in rec:
        bw = (_g(rec, "bbr_info_bw_hi") << 32) | _g(rec, "bbr_info_bw_lo")
        bbr = {"bw": fmt_bw(bw, numeric=numeric) + "bps", "mrtt": fmt_ms(_g(rec, "bbr_info_min_rtt"))}
        for key in ("pacing_gain", "cwnd_gain"):
            if _g(rec, f"bbr_info_{key}"):
                bbr[key] = "%g" % (_g(rec, f"bbr_info_{key}") / 256.0)
        out["bbr"] = bbr
    rtt = float(g("rtt"))
    vegas_rtt = _g(rec, "vegas_info_rtt")
    if _g(rec, "vegas_info_enabled") and vegas_rtt and vegas_rtt != 0x7FFFFFFF:
        rtt = float(vegas_rtt)
    if rtt > 0 and g("snd_mss") and g("snd_cwnd"):
        # Same operation order as ss: cwnd * mss * 8000000. / rtt, in doubles.
        send = float(g("snd_cwnd")) * float(g("snd_mss")) * 8000000.0 / rtt
        out["send"] = fmt_bits(send, numeric=numeric) + "bps"
    for key, name in (
        ("lastsnd", "last_data_sent"),
        ("lastrcv", "last_data_recv"),
        ("lastack", "last_ack_recv"),
    ):
        if g(name):
            out[key] = str(g(name))
    pacing, max_pacing = g("pacing_rate"), g("max_pacing_rate")
    if pacing and pacing != U64_MAX:
        out["pacing_rate"] = fmt_bw(pacing, numeric=numeric) + "bps"
        if max_pacing and max_pacing != U64_MAX:
            out["max_pacing_rate"] = fmt_bw(max_pacing, numeric=numeric) + "bps"
    if g("delivery_rate"):
        out["delivery_rate"] = fmt_bw(g("delivery_rate"), numeric=numeric) + "bps"
    if g("delivered"):
        out["delivered"] = str(g("delivered"))
    if g("delivered_ce"):
        out["delivered_ce"] = str(g("delivered_ce"))
    if g("delivery_rate_app_limited"):
        out["app_limited"] = True
    busy = g("busy_time")
    if busy:
        out["busy"] = f"{busy // 1000}ms"
        for key in ("rwnd_limited", "sndbuf_limited"):
            if g(key):
                out[key] = f"{g(key) // 1000}ms"
                out[key + "_pct"] = "%.1f" % (100.0 * g(key) / busy)
    if g("unacked"):
        out["unacked"] = str(g("unacked"))
    if g("retrans") or g("total_retrans"):
        out["retrans"] = f"{g('retrans')}/{g('total_retrans')}"
    if g("lost"):
        out["lost"] = str(g("lost"))
    if g("sacked") and _g(rec, "inet_diag_msg_state") != STATES["LISTEN"]:
        out["sacked"] = str(g("sacked"))
    for key in ("dsack_dups", "fackets"):
        if g(key):
            out[key] = str(g(key))
    if g("reordering") != 3:
        out["reordering"] = str(g("reordering"))
    if g("reord_seen"):
        out["reord_seen"] = str(g("reord_seen"))
    if g("rcv_rtt"):
        out["rcv_rtt"] = fmt_ms(g("rcv_rtt"))
    for key, name in (
        ("rcv_space", "rcv_space"),
        ("rcv_ssthresh", "rcv_ssthresh"),
        ("notsent", "not_sent_bytes"),
    ):
        if g(name):
            out[key] = str(g(name))
    if g("min_rtt") and g("min_rtt") != U32_MAX:
        out["minrtt"] = fmt_ms(g("min_rtt"))
    for key in ("rcv_ooopack", "snd_wnd", "rcv_wnd", "rehash"):
        if g(key):
            out[key] = str(g(key))
    return out


def fmt_hash_x(value: int) -> str:
    """C's ``%#x``: ``0x2a``, but plain ``0`` for zero (Python's ``%#x`` would give ``0x0``)."""
    return f"{value:#x}" if value else "0"


TIMER_NAMES = ("off", "on", "keepalive", "timewait", "persist", "unknown")


def render_header(rec: Mapping[str, Any]) -> dict[str, Any]:
    """What ss's first line would show for a decoded record: state, queues, timer, details, tos."""
    state_names = {v: k for k, v in STATES.items()}
    out: dict[str, Any] = {
        "state": state_names.get(_g(rec, "inet_diag_msg_state"), "UNKNOWN"),
        "recv_q": str(_g(rec, "inet_diag_msg_rqueue")),
        "send_q": str(_g(rec, "inet_diag_msg_wqueue")),
    }
    timer = _g(rec, "inet_diag_msg_timer")
    if timer:
        out["timer"] = {
            "name": TIMER_NAMES[min(timer, 5)],
            "expires": fmt_ms_timer(_g(rec, "inet_diag_msg_expires")),
            "retrans": str(_g(rec, "inet_diag_msg_retrans")),
        }
    if _g(rec, "inet_diag_msg_uid"):
        out["uid"] = str(_g(rec, "inet_diag_msg_uid"))
    out["ino"] = str(_g(rec, "inet_diag_msg_inode"))
    out["sk"] = "%x" % _g(rec, "inet_diag_msg_socket_cookie")  # noqa: UP031
    if "shutdown_state" in rec:
        mask = _g(rec, "shutdown_state")
        out["shutdown"] = ("-" if mask & 1 else "<") + "-" + ("-" if mask & 2 else ">")
    for key, name in (("tos", "type_of_service"), ("tclass", "traffic_class"), ("class_id", "class_id")):
        if name in rec:
            out[key] = fmt_hash_x(_g(rec, name))
    return out
