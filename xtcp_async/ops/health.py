"""Readiness: is the service doing its job right now? (pure; read by /readyz)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xtcp_async.service import Service

#: A reason longer than this is cut: it is one line in a probe log, not a report.
MAX_REASON_CHARS = 300


def not_ready_reason(service: Service) -> str | None:
    """None when the last poll succeeded and every sink is connected; otherwise one line why.

    "Connected" means the sink says it can deliver (``sink.connected``) and its runner's last
    delivery attempt did not fail (``runner.last_error is None``): a socket can be up while the
    broker refuses every message, and a file sink has no connection at all, only failed writes.
    """
    stats = service.stats
    reasons: list[str] = []
    if stats.last_poll_ok is None:
        reasons.append("no poll has completed yet")
    elif not stats.last_poll_ok:
        reasons.append(f"last poll failed: {stats.last_poll_error}")
    for runner in service.runners:
        if runner.last_error is not None:
            reasons.append(f"sink {runner.name} failing: {runner.last_error}")
        elif not runner.sink.connected:
            reasons.append(f"sink {runner.name} not connected")
    if not reasons:
        return None
    line = "; ".join(reasons).replace("\r", " ").replace("\n", " ")
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 1] + "…"
