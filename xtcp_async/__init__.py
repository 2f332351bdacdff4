"""xtcp_async: stream every TCP socket's kernel state as xtcp2-compatible records."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
