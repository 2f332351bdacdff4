"""Placeholder until the metrics/health listener lands: serves nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xtcp_async.service import Service


async def serve(service: Service, listen: str) -> None:
    """Serve /metrics, /healthz and /readyz on ``listen`` until cancelled."""
    del service, listen
