"""Specifications for the rate-limited logging helper."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from xtcp_async.logs import JsonFormatter
from xtcp_async.ops.ratelimit import RateLimitFilter, flush_handler_filters, rate_limited


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """A clock the test moves by hand."""
    return Clock()


@pytest.fixture
def captured(clock: Clock) -> Iterator[tuple[logging.Logger, logging.Handler, io.StringIO]]:
    """A private logger whose handler carries a RateLimitFilter with a 10 s interval."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RateLimitFilter(10.0, clock=clock))
    logger = logging.getLogger(f"test.ratelimit.{id(out)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield logger, handler, out
    logger.removeHandler(handler)


def lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_first_line_of_a_kind_passes_and_repeats_within_the_interval_are_held(
        captured: tuple[logging.Logger, logging.Handler, io.StringIO], clock: Clock) -> None:
    """The first record of a kind is logged at once; repeats inside the interval are not."""
    logger, _, out = captured
    for i in range(5):
        logger.error("poll %d: timeout", i, extra=rate_limited("poll:timeout"))
        clock.now += 1
    assert lines(out) == ["poll 0: timeout"]


def test_next_line_after_the_interval_carries_the_count(
        captured: tuple[logging.Logger, logging.Handler, io.StringIO], clock: Clock) -> None:
    """After the interval one line goes out again, saying how many were suppressed meanwhile."""
    logger, _, out = captured
    for i in range(4):
        logger.error("poll %d: timeout", i, extra=rate_limited("poll:timeout"))
        clock.now += 1
    clock.now += 10
    logger.error("poll %d: timeout", 9, extra=rate_limited("poll:timeout"))
    assert lines(out) == ["poll 0: timeout", "poll 9: timeout [3 similar suppressed in the last 14s]"]


def test_kinds_are_limited_independently(
        captured: tuple[logging.Logger, logging.Handler, io.StringIO]) -> None:
    """Two kinds each get their own first line."""
    logger, _, out = captured
    for _ in range(3):
        logger.warning("a", extra=rate_limited("kind-a"))
        logger.warning("b", extra=rate_limited("kind-b"))
    assert lines(out) == ["a", "b"]


def test_records_without_a_key_are_never_limited(
        captured: tuple[logging.Logger, logging.Handler, io.StringIO]) -> None:
    """Lines that did not opt in pass untouched, even with the same format string."""
    logger, _, out = captured
    for name in ("0:nsq", "1:kafka", "1:kafka"):
        logger.error("sink %s: payloads could not be delivered", name)
    assert len(lines(out)) == 3


def test_per_call_interval_overrides_the_default(
        captured: tuple[logging.Logger, logging.Handler, io.StringIO], clock: Clock) -> None:
    """A call site may choose its own interval (e.g. the poll interval)."""
    logger, _, out = captured
    logger.error("x", extra=rate_limited("k", every_s=0.5))
    clock.now += 0.6
    logger.error("x", extra=rate_limited("k", every_s=0.5))
    assert lines(out) == ["x", "x"]


def test_flush_reports_a_burst_that_went_quiet(
        captured: tuple[logging.Logger, logging.Handler, io.StringIO], clock: Clock) -> None:
    """flush() logs the last held line of each kind with the count of the others, once."""
    logger, handler, out = captured
    for i in range(4):
        logger.error("poll %d failed", i, extra=rate_limited("poll"))
        clock.now += 1
    assert flush_handler_filters(handler) == 1
    assert flush_handler_filters(handler) == 0
    assert lines(out) == ["poll 0 failed", "poll 3 failed [2 similar suppressed in the last 4s]"]


def test_json_lines_carry_the_suppressed_count(clock: Clock) -> None:
    """In JSON logs the count is a field of its own, so log pipelines can sum it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RateLimitFilter(10.0, clock=clock))
    logger = logging.getLogger("test.ratelimit.json")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.error("boom", extra=rate_limited("k"))
        logger.error("boom", extra=rate_limited("k"))
        clock.now += 11
        logger.error("boom", extra=rate_limited("k"))
    finally:
        logger.removeHandler(handler)
    records = [json.loads(line) for line in lines(out)]
    assert "suppressed" not in records[0]
    assert records[1]["suppressed"] == 1
    assert records[1]["level"] == "error"


def test_client_library_lines_share_the_rate_limit_and_topic_autocreate_is_info(clock: Clock) -> None:
    """aiokafka repeating a reconnect error 50 times is one line (plus a count later); its
    "topic not found" line at the first send to an auto-created topic is INFO, not ERROR."""
    from xtcp_async.logs import LibraryLines

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(LibraryLines())
    handler.addFilter(RateLimitFilter(10.0, clock=clock))
    lib = logging.getLogger("aiokafka.conn.test")
    lib.propagate = False
    lib.addHandler(handler)
    try:
        for _ in range(50):
            lib.error("Unable connect to node with id %s: %s", 1, "refused")
        lib.error("Topic %s not found in cluster metadata", "xtcp")
        assert lines(out) == ["ERROR Unable connect to node with id 1: refused",
                              "INFO Topic xtcp not found in cluster metadata"]
        clock.now += 11
        lib.error("Unable connect to node with id %s: %s", 1, "refused")
        assert lines(out)[-1].endswith("[49 similar suppressed in the last 11s]")
    finally:
        lib.removeHandler(handler)
