"""Logging to stderr: text by default, JSON lines with --log-format json.

Repeated errors are rate-limited on the handler (see :mod:`xtcp_async.ops.ratelimit`): call
sites that can repeat every poll pass ``extra=rate_limited(kind, every_s=interval)``.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from xtcp_async.ops.ratelimit import DEFAULT_EVERY_S, SUPPRESSED_ATTR, RateLimitFilter, flush_handler_filters


class JsonFormatter(logging.Formatter):
    """One JSON object per log line (time, level, logger, message, exception, suppressed count)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        suppressed = getattr(record, SUPPRESSED_ATTR, None)
        if suppressed:
            out["suppressed"] = suppressed
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(level: str, fmt: str, *, rate_limit_s: float = DEFAULT_EVERY_S) -> logging.Handler:
    """Send every log line to stderr in ``fmt`` at ``level``; returns the handler."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RateLimitFilter(rate_limit_s))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every reconnect attempt at ERROR; our runner already reports delivery state.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    return handler


def flush_rate_limited() -> int:
    """Log what the rate limiter still holds back (at shutdown); returns how many lines."""
    return sum(flush_handler_filters(h) for h in logging.getLogger().handlers)
