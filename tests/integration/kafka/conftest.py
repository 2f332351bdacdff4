"""Fixtures that start real Apache Kafka brokers (jars from scripts/install_kafka.sh).

One broker per Kafka version is shared by the whole session (each test writes its own topic);
tests that kill or restart a broker get their own from ``kafka_broker_factory``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka_helpers import SASL_USERS

from tests.brokers.kafka import (
    KAFKA_VERSIONS,
    BrokerUnavailableError,
    KafkaBroker,
    kafka_libs,
    make_tls_files,
)

_topics = itertools.count()


def _require_kafka(version: str) -> None:
    try:
        kafka_libs(version)
    except (BrokerUnavailableError, OSError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Kafka {version} is required under CI: {exc}")
        pytest.skip(reason=f"Kafka {version} not available (needs java 17 + mvn + Maven Central; run "
                    f"`make brokers`): {exc}")


def _start(broker: KafkaBroker) -> KafkaBroker:
    try:
        broker.start()
    except BrokerUnavailableError as exc:
        broker.kill()
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(reason=f"Kafka {broker.version} did not start here: {exc}")
    return broker


@pytest.fixture(scope="session", params=KAFKA_VERSIONS, ids=lambda v: f"kafka-{v}")
def kafka_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KafkaBroker]:
    """A running broker of each tested version, with PLAINTEXT, SSL (client cert required) and
    SASL_PLAINTEXT listeners; shared by the session."""
    version: str = request.param
    _require_kafka(version)
    workdir = tmp_path_factory.mktemp(f"kafka-{version}")
    broker = KafkaBroker(version, workdir, tls=make_tls_files(workdir / "tls"), sasl_users=dict(SASL_USERS))
    _start(broker)
    yield broker
    broker.stop()


@pytest.fixture
def kafka_broker_factory(tmp_path: Path) -> Iterator[Callable[..., KafkaBroker]]:
    """Make private brokers (started unless ``start=False``) a test may kill and restart; all
    are killed after the test."""
    made: list[KafkaBroker] = []
    numbers = itertools.count()

    def make(version: str = KAFKA_VERSIONS[-1], *, start: bool = True, **kwargs: Any) -> KafkaBroker:
        _require_kafka(version)
        broker = KafkaBroker(version, tmp_path / f"kafka{next(numbers)}", **kwargs)
        made.append(broker)
        return _start(broker) if start else broker

    yield make
    for broker in made:
        broker.kill()


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses (topics are auto-created on first produce)."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:150]
    return f"xtcp-{next(_topics)}-{base}"
