"""What to send: the kernel filter (--filter, --exclude-port) and the stage settings, parsed once.

Kept apart from config.py so the feature's parsing lives in one place; config.py only calls
these functions and stores the results in frozen slices.
"""

from __future__ import annotations

from dataclasses import dataclass

from xtcp_async.netlink.filter_ast import And, Expr, FilterSyntaxError, Not, Or, PortCmp, parse
from xtcp_async.netlink.filter_bytecode import ProgramTooLarge, compile_filter

#: Compared by --emit changed unless --emit-fields says otherwise: counters and state, not timers.
DEFAULT_EMIT_FIELDS = (
    "tcp_info_bytes_acked", "tcp_info_bytes_received", "tcp_info_segs_in", "tcp_info_segs_out",
    "tcp_info_retrans", "tcp_info_total_retrans", "tcp_info_lost", "inet_diag_msg_state",
    "tcp_info_ca_state", "tcp_info_snd_cwnd", "tcp_info_snd_ssthresh",
)


@dataclass(frozen=True)
class SampleClass:
    """One ``--sample``: rows matching ``expr`` (None: every row) are kept at ``rate_ppm``."""

    text: str
    expr: Expr | None
    rate_ppm: int


@dataclass(frozen=True)
class StageSettings:
    """The column stages' slice: sampling classes (first match wins) and change-only mode."""

    samples: tuple[SampleClass, ...] = ()
    emit: str = "all"
    heartbeat: int = 0
    emit_fields: tuple[str, ...] = DEFAULT_EMIT_FIELDS

    @property
    def active(self) -> bool:
        return bool(self.samples) or self.emit == "changed"


def kernel_expression(filter_text: str | None, exclude_ports: list[int]) -> Expr | None:
    """--filter and --exclude-port as one tree: ``(FILTER) and not (sport = P or dport = P ...)``."""
    tree = parse(filter_text) if filter_text and filter_text.strip() else None
    if exclude_ports:
        ports: Expr | None = None
        for p in exclude_ports:
            for side in ("src", "dst"):
                cond = PortCmp(side, "eq", p)
                ports = cond if ports is None else Or(ports, cond)
        assert ports is not None
        excl = Not(ports)
        tree = excl if tree is None else And(tree, excl)
    return tree


def kernel_bytecode(filter_text: str | None, exclude_ports: list[int]) -> bytes:
    """The compiled program, or b"" when nothing is filtered. Raises ValueError naming the token."""
    tree = kernel_expression(filter_text, exclude_ports)
    if tree is None:
        return b""
    try:
        return compile_filter(tree)
    except ProgramTooLarge as exc:
        raise ValueError(str(exc)) from None


def parse_sample(text: str) -> SampleClass:
    """``RATE``, ``*=RATE`` or ``EXPR=RATE`` (the last ``=`` splits); 0 < RATE ≤ 1."""
    expr_text, sep, rate_text = text.rpartition("=")
    if not sep:
        expr_text, rate_text = "*", text
    expr_text = expr_text.strip()
    try:
        rate = float(rate_text)
    except ValueError:
        raise ValueError(f"{text!r}: expected RATE or EXPR=RATE with 0 < RATE <= 1") from None
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"{text!r}: the rate must be 0 < RATE <= 1")
    ppm = max(1, round(rate * 1_000_000))
    if expr_text in ("", "*"):
        return SampleClass("*", None, ppm)
    try:
        expr = parse(expr_text)
    except FilterSyntaxError as exc:
        raise ValueError(f"{expr_text!r}: {exc}") from None
    from xtcp_async.stages.evaluate import check_evaluable

    check_evaluable(expr)
    return SampleClass(expr_text, expr, ppm)


def check_emit_fields(names: list[str]) -> None:
    """Each name must be an integer column the decoder fills (a kernel field)."""
    from xtcp_async.netlink.fields import KERNEL_INT_FIELDS

    known = {f.name for f in KERNEL_INT_FIELDS}
    for name in names:
        if name not in known:
            raise ValueError(f"{name!r} is not a kernel integer field (see the .proto for names)")
    if not names:
        raise ValueError("at least one field is needed")
