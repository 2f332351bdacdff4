"""Rate-limited logging: one line per kind per interval, carrying how many were held back.

Opt-in per call site, because only the caller knows what "the same error" means: a log call
passes ``extra=rate_limited("poll:timeout", every_s=interval)``; records without a key pass
untouched (two different sinks failing at shutdown must both be logged, even though their
format string is the same). The filter sits on the stderr handler (see ``logs.setup_logging``),
so the key works from any logger.

The first record of a kind goes out at once; the ones that follow within ``every_s`` are
counted and dropped; the next one after the interval goes out with " [N similar suppressed
in the last Xs]" appended (and a ``suppressed`` field in JSON logs). A kind that falls silent
after a burst has its count reported by :meth:`RateLimitFilter.flush` (call it at shutdown).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

#: LogRecord attributes set through ``extra=`` (names chosen not to clash with logging's own).
KEY_ATTR = "ratelimit_key"
EVERY_ATTR = "ratelimit_every_s"
SUPPRESSED_ATTR = "suppressed"

DEFAULT_EVERY_S = 10.0


def rate_limited(key: str, every_s: float | None = None) -> dict[str, object]:
    """The ``extra=`` for a log call that may repeat: at most one line per ``key`` per ``every_s``."""
    extra: dict[str, object] = {KEY_ATTR: key}
    if every_s is not None:
        extra[EVERY_ATTR] = every_s
    return extra


@dataclass
class _Kind:
    last_emit: float
    suppressed: int = 0
    last_record: logging.LogRecord | None = None


class RateLimitFilter(logging.Filter):
    """Lets one record per rate-limit key through per interval, counting the rest."""

    def __init__(self, every_s: float = DEFAULT_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every_s = every_s
        self.clock = clock
        self._kinds: dict[str, _Kind] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = getattr(record, KEY_ATTR, None)
        if key is None:
            return True
        every = float(getattr(record, EVERY_ATTR, self.every_s))
        now = self.clock()
        kind = self._kinds.get(key)
        if kind is None:
            self._kinds[key] = _Kind(last_emit=now)
            return True
        if now - kind.last_emit < every:
            kind.suppressed += 1
            kind.last_record = record
            return False
        if kind.suppressed:
            _annotate(record, kind.suppressed, now - kind.last_emit)
        kind.last_emit = now
        kind.suppressed = 0
        kind.last_record = None
        return True

    def flush(self) -> list[logging.LogRecord]:
        """Records summarizing every kind with suppressed lines (the last one of each, annotated).

        The caller emits them (``handler.handle(record)``); they are returned rather than logged
        here so a filter never re-enters the handler it sits on.
        """
        now = self.clock()
        out: list[logging.LogRecord] = []
        for kind in self._kinds.values():
            if kind.suppressed and kind.last_record is not None:
                record = kind.last_record
                if kind.suppressed > 1:  # this record goes out itself; the others are counted
                    _annotate(record, kind.suppressed - 1, now - kind.last_emit)
                setattr(record, KEY_ATTR, None)  # do not count it again on its way out
                out.append(record)
                kind.suppressed = 0
                kind.last_record = None
                kind.last_emit = now
        return out


def _annotate(record: logging.LogRecord, count: int, seconds: float) -> None:
    # Appended to the format string, not the formatted text, so %-args still apply; the
    # suffix itself holds no '%'.
    record.msg = f"{record.msg} [{count} similar suppressed in the last {seconds:.0f}s]"
    setattr(record, SUPPRESSED_ATTR, count)


def flush_handler_filters(handler: logging.Handler) -> int:
    """Emit the pending summaries of every RateLimitFilter on ``handler``; returns how many."""
    n = 0
    for flt in handler.filters:
        if isinstance(flt, RateLimitFilter):
            for record in flt.flush():
                handler.handle(record)
                n += 1
    return n
