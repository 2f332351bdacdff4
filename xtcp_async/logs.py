"""Logging to stderr: text by default, JSON lines with --log-format json.

Repeated errors are rate-limited on the handler (see :mod:`xtcp_async.ops.ratelimit`): call
sites that can repeat every poll pass ``extra=rate_limited(kind, every_s=interval)``.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from xtcp_async.ops.ratelimit import (
    DEFAULT_EVERY_S,
    KEY_ATTR,
    SUPPRESSED_ATTR,
    RateLimitFilter,
    flush_handler_filters,
)

#: Client libraries whose own log lines repeat at their retry rate while a broker is down.
_LIBRARIES = ("aiokafka", "kafka")
#: Their lines that are expected, not errors: the first send to a topic the broker creates on use.
_NOT_ERRORS = ("Topic %s not found in cluster metadata", "Topic %s is not available during auto-create")


class LibraryLines(logging.Filter):
    """Puts client-library lines under the same rate limit as ours (one per kind per interval).

    With a broker down aiokafka logs every reconnect attempt (~38 lines/s measured); each of its
    format strings becomes one rate-limit kind, so an outage is a line every interval with the
    count held back. The auto-create "topic not found" line is an INFO, not an ERROR.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(_LIBRARIES) or getattr(record, KEY_ATTR, None) is not None:
            return True
        setattr(record, KEY_ATTR, f"lib:{record.name}:{record.msg}")
        if isinstance(record.msg, str) and record.msg.startswith(_NOT_ERRORS) and record.levelno > logging.INFO:
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


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
    handler.addFilter(LibraryLines())  # before the rate limit, which reads the key it sets
    handler.addFilter(RateLimitFilter(rate_limit_s))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every reconnect attempt at ERROR; our runner already reports delivery state,
    # and what aiokafka says is rate-limited like our own lines (LibraryLines).
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    return handler


def flush_rate_limited() -> int:
    """Log what the rate limiter still holds back (at shutdown); returns how many lines."""
    return sum(flush_handler_filters(h) for h in logging.getLogger().handlers)
