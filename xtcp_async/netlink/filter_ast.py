"""ss filter expressions: the syntax tree and the parser (pure: text in, tree out).

The grammar is ss's (iproute2 misc/ssfilter.y), the part after the state:

    expr   := '(' list ')' | ('!' | 'not') expr | cond
    list   := expr (('|' | '||' | 'or' | '&' | '&&' | 'and')? expr)*
    cond   := (sport | dport) OP PORT  |  (src | dst) [= | == | != ...] HOST
            |  dev [=|!=] NAME  |  fwmark [=|!=] MARK[/MASK]  |  cgroup [=|!=] PATH  |  autobound

ss gives `and` and `or` the *same* precedence and groups left to right (`a or b and c` is
`(a or b) and c`, checked against ss 6.1 on this machine); juxtaposition is `and`. We do the
same, since ss is the specification. Unlike ss we also accept parentheses glued to a word
(`(sport = :22)`); ss needs them space-separated.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

AF_UNSPEC = 0
AF_INET = int(socket.AF_INET)
AF_INET6 = int(socket.AF_INET6)


class FilterSyntaxError(ValueError):
    """The expression cannot be parsed; the message names the offending token."""


@dataclass(frozen=True)
class HostCond:
    """``src``/``dst`` address prefix and optional port (kernel S_COND / D_COND)."""

    side: str  # "src" | "dst"
    family: int  # AF_UNSPEC (any address), AF_INET or AF_INET6
    prefix_len: int
    addr: bytes  # 0, 4 or 16 bytes
    port: int  # -1: any port


@dataclass(frozen=True)
class PortCmp:
    """``sport``/``dport`` compared with a port (kernel S_GE/S_LE/S_EQ, D_GE/D_LE/D_EQ)."""

    side: str  # "src" | "dst"
    op: str  # "ge" | "le" | "eq"
    port: int


@dataclass(frozen=True)
class DevCond:
    """``dev NAME``: the socket is bound to this interface index (kernel DEV_COND)."""

    ifindex: int


@dataclass(frozen=True)
class MarkCond:
    """``fwmark = MARK/MASK``: (socket mark & mask) == mark (kernel MARK_COND)."""

    mark: int
    mask: int


@dataclass(frozen=True)
class CgroupCond:
    """``cgroup PATH``: the socket's cgroup v2 id (kernel CGROUP_COND)."""

    cgroup_id: int


@dataclass(frozen=True)
class AutoBound:
    """``autobound``: the local port was picked by the kernel, not bound (kernel AUTO)."""


@dataclass(frozen=True)
class Not:
    expr: Expr


@dataclass(frozen=True)
class And:
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Or:
    left: Expr
    right: Expr


Expr = HostCond | PortCmp | DevCond | MarkCond | CgroupCond | AutoBound | Not | And | Or

_OR = {"|", "||", "or"}
_AND = {"&", "&&", "and"}
_NOT = {"!", "not"}
_EQ = {"=", "==", "eq"}
_NE = {"!=", "ne", "neq"}
_GE = {">=", "ge", "geq"}
_LE = {"<=", "le", "leq"}
_GT = {">", "gt"}
_LT = {"<", "lt"}
_CMP = _EQ | _NE | _GE | _LE | _GT | _LT
_KEYWORDS = {"sport", "dport", "src", "dst", "dev", "fwmark", "cgroup", "autobound"}
#: Where cgroup v2 is mounted; ``cgroup PATH`` is relative to it, as in ss.
CGROUP2_ROOT = "/sys/fs/cgroup"


def tokenize(text: str) -> list[str]:
    """Words split on white space, with parentheses always tokens of their own."""
    return [t for t in re.split(r"\s+|([()])", text) if t]


def parse(text: str, *, resolve_dev: bool = True) -> Expr:
    """The syntax tree of ``text``; FilterSyntaxError names the first token that does not fit."""
    tokens = tokenize(text)
    if not tokens:
        raise FilterSyntaxError("empty filter expression")
    p = _Parser(tokens, resolve_dev)
    tree = p.list()
    if p.pos < len(tokens):
        raise FilterSyntaxError(f"unexpected {tokens[p.pos]!r}")
    return _as_ss_lists(tree)


def _as_ss_lists(tree: Expr) -> Expr:
    """The tree that selects what ss lists for ``tree``.

    ss sends the kernel the expression compiled as is, then runs it again on each reply with
    its own userspace meaning, and lists what passes both. Two conditions mean something else
    there: ``autobound`` is "local port in the ephemeral range", and an address prefix is
    compared on the raw address bits whatever the family (so ``src 0.0.0.0`` also matches
    ``::1``, whose first 32 bits are zero). Both are expressible as kernel conditions, so where
    they occur we compile ``tree and userspace(tree)``: ss is the specification.
    """
    user = _userspace(tree)
    return tree if user == tree else And(tree, user)



def _userspace(e: Expr) -> Expr:
    if isinstance(e, AutoBound):
        lo, hi = ephemeral_port_range()
        return And(PortCmp("src", "ge", lo), PortCmp("src", "le", hi))
    if isinstance(e, HostCond) and e.family == AF_INET:
        # Raw bits: an IPv6 socket whose leading bits equal the IPv4 prefix matches too.
        return Or(e, HostCond(e.side, AF_INET6, e.prefix_len, e.addr + bytes(12), e.port))
    if isinstance(e, HostCond) and e.family == AF_INET6:
        # Raw bits against an IPv4 socket's 4 address bytes followed by zeros.
        tail = int.from_bytes(e.addr, "big") & ((1 << 96) - 1)
        tail_bits = max(0, e.prefix_len - 32)
        if tail_bits and tail >> (96 - tail_bits):
            return e
        v4 = HostCond(e.side, AF_INET, min(e.prefix_len, 32), e.addr[:4], e.port)
        return Or(e, And(v4, Not(HostCond(e.side, AF_INET6, 0, bytes(16), -1))))
    if isinstance(e, Not):
        return Not(_userspace(e.expr))
    if isinstance(e, And):
        return And(_userspace(e.left), _userspace(e.right))
    if isinstance(e, Or):
        return Or(_userspace(e.left), _userspace(e.right))
    return e


class _Parser:
    def __init__(self, tokens: list[str], resolve_dev: bool) -> None:
        self.tokens = tokens
        self.pos = 0
        self.resolve_dev = resolve_dev

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, what: str) -> str:
        tok = self.peek()
        if tok is None:
            raise FilterSyntaxError(f"expression ends where {what} is expected")
        self.pos += 1
        return tok

    def list(self) -> Expr:
        left = self.expr()
        while (tok := self.peek()) is not None and tok != ")":
            if tok in _OR:
                self.pos += 1
                left = Or(left, self.expr())
            else:
                if tok in _AND:
                    self.pos += 1
                left = And(left, self.expr())
        return left

    def expr(self) -> Expr:
        tok = self.take("a condition")
        low = tok.lower()
        if tok == "(":
            inner = self.list()
            if self.take("')'") != ")":  # pragma: no cover - list() stops only at ')' or the end
                raise FilterSyntaxError("expected ')'")
            return inner
        if low in _NOT:
            return Not(self.expr())
        if low in ("sport", "dport"):
            return self.port_cond("src" if low == "sport" else "dst")
        if low in ("src", "dst"):
            return self.negated_if(lambda: parse_host(low, self.take("an address")))
        if low == "dev":
            return self.negated_if(lambda: DevCond(self.dev(self.take("a device"))))
        if low == "fwmark":
            return self.negated_if(lambda: self.mark(self.take("a mark")))
        if low == "cgroup":
            return self.negated_if(lambda: CgroupCond(cgroup_id(self.take("a cgroup path"))))
        if low == "autobound":
            return AutoBound()
        raise FilterSyntaxError(f"unexpected {tok!r}: expected sport, dport, src, dst, dev, fwmark, "
                                "cgroup, autobound, not or '('")

    def negated_if(self, cond: Callable[[], Expr]) -> Expr:
        """An optional ``=``/``==`` or ``!=`` before the operand."""
        tok = (self.peek() or "").lower()
        if tok in _EQ:
            self.pos += 1
        elif tok in _NE:
            self.pos += 1
            return Not(cond())
        elif tok in _CMP:
            raise FilterSyntaxError(f"unexpected {self.peek()!r}: only = and != compare here")
        return cond()

    def port_cond(self, side: str) -> Expr:
        tok = (self.peek() or "").lower()
        op = "=" if tok not in _CMP else tok
        if tok in _CMP:
            self.pos += 1
        raw = self.take("a port")
        port = parse_port(raw)
        if op in _EQ or op == "=":
            return HostCond(side, AF_UNSPEC, 0, b"", -1) if port < 0 else PortCmp(side, "eq", port)
        if port < 0:
            raise FilterSyntaxError(f"unexpected {raw!r}: a port number is needed with {op!r}")
        if op in _NE:
            return Not(PortCmp(side, "eq", port))
        if op in _GE:
            return PortCmp(side, "ge", port)
        if op in _LE:
            return PortCmp(side, "le", port)
        if op in _GT:
            return Not(PortCmp(side, "le", port))
        return Not(PortCmp(side, "ge", port))

    def dev(self, raw: str) -> int:
        if raw.isdigit():
            return int(raw)
        if not self.resolve_dev:
            raise FilterSyntaxError(f"unexpected {raw!r}: no device names here")
        try:
            return socket.if_nametoindex(raw)
        except OSError:
            raise FilterSyntaxError(f"unexpected {raw!r}: no such network device") from None

    def mark(self, raw: str) -> MarkCond:
        mark_s, _, mask_s = raw.partition("/")
        try:
            mark = int(mark_s, 0)
            mask = int(mask_s, 0) if mask_s else 0xFFFFFFFF
        except ValueError:
            raise FilterSyntaxError(f"unexpected {raw!r}: expected MARK or MARK/MASK") from None
        if not (0 <= mark <= 0xFFFFFFFF and 0 <= mask <= 0xFFFFFFFF):
            raise FilterSyntaxError(f"unexpected {raw!r}: marks are 32-bit")
        return MarkCond(mark, mask)



def parse_port(raw: str) -> int:
    """``:80``, ``80``, ``:ssh`` or ``:*`` (any: -1)."""
    text = raw[1:] if raw.startswith(":") else raw
    if text == "*":
        return -1
    if text.isdigit():
        port = int(text)
        if port > 0xFFFF:
            raise FilterSyntaxError(f"unexpected {raw!r}: ports are 0-65535")
        return port
    if re.fullmatch(r"[A-Za-z][\w-]*", text):
        try:
            return socket.getservbyname(text, "tcp")
        except OSError:
            pass
    raise FilterSyntaxError(f"unexpected {raw!r}: expected a port (:80, 80, :ssh or :*)")


def parse_host(side: str, raw: str) -> HostCond:
    """``ADDR``, ``ADDR/LEN``, ``ADDR:PORT``, ``[V6]:PORT``, ``[V6/LEN]:PORT``, ``*``, ``*:PORT``."""
    text, port = raw, -1
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise FilterSyntaxError(f"unexpected {raw!r}: missing ']'")
        rest = text[end + 1:]
        text = text[1:end]
        if rest:
            if not rest.startswith(":"):
                raise FilterSyntaxError(f"unexpected {raw!r}: expected ':PORT' after ']'")
            port = parse_port(rest)
    elif text.startswith("*"):
        port = parse_port(text[1:]) if text[1:] else -1
        return HostCond(side, AF_UNSPEC, 0, b"", port)
    else:
        # As ss does: the port follows the last ':' after any '/'. So `fd00::/32` is a prefix,
        # `fd00::2:1` is fd00::2 port 1, and `::1` is refused; write IPv6 in brackets.
        colon = text.rfind(":", max(text.find("/"), 0))
        if colon >= 0:
            text, port = text[:colon], parse_port(text[colon + 1:])
            if not text:
                raise FilterSyntaxError(f"unexpected {raw!r}: an address is needed before ':' (use *{raw})")
    addr_s, slash, len_s = text.partition("/")
    try:
        addr = ipaddress.ip_address(addr_s)
    except ValueError:
        raise FilterSyntaxError(f"unexpected {raw!r}: not an IP address or prefix") from None
    bits: int = addr.max_prefixlen
    if slash:
        if not len_s.isdigit() or int(len_s) > bits:
            raise FilterSyntaxError(f"unexpected {raw!r}: prefix length must be 0-{bits}")
        bits = int(len_s)
    family = AF_INET if addr.version == 4 else AF_INET6
    return HostCond(side, family, bits, addr.packed, port)


def cgroup_id(path: str) -> int:
    """The cgroup v2 id of ``path`` (relative to the cgroup2 mount, as ss takes it): its inode."""
    import os

    full = os.path.join(CGROUP2_ROOT, path.lstrip("/"))
    try:
        st = os.stat(full)
    except OSError as exc:
        raise FilterSyntaxError(f"unexpected {path!r}: cgroup {full}: {exc.strerror}") from None
    return int(st.st_ino)


def ephemeral_port_range() -> tuple[int, int]:
    """net.ipv4.ip_local_port_range (the kernel's default when it cannot be read)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            lo, hi = (int(x) for x in fh.read().split())
    except (OSError, ValueError):
        return 32768, 60999
    return lo, hi
