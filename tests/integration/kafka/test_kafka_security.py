"""TLS (a CA the test makes) and SASL (PLAIN, SCRAM) against the real broker's own listeners."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from kafka_helpers import SASL_USERS, consume, make_sink, payloads, started

from xtcp_async.errors import SinkError

if TYPE_CHECKING:
    from tests.brokers.kafka import KafkaBroker

pytestmark = pytest.mark.kafka


def _tls_options(broker: KafkaBroker) -> dict[str, str]:
    assert broker.tls is not None
    return {"ca_file": str(broker.tls.ca_file), "cert_file": str(broker.tls.client_cert),
            "key_file": str(broker.tls.client_key)}


async def test_tls_with_client_certificate_delivers(kafka_broker: KafkaBroker, topic: str) -> None:
    """Over the SSL listener (hostname checked, client cert required) every payload arrives intact."""
    sent = payloads(40, seed=21)
    sink = make_sink(kafka_broker.ssl_bootstrap, topic, **_tls_options(kafka_broker))
    assert sink.settings["security_protocol"] == "SSL"
    async with started(sink):
        assert sink.connected
        await sink.send_many(sent)
    assert [r.value for r in await consume(kafka_broker.bootstrap, topic)] == sent


async def test_tls_without_the_required_client_certificate_fails_retriably(
    kafka_broker: KafkaBroker, topic: str
) -> None:
    """A handshake the broker refuses is a retriable delivery error, not a hang or a crash."""
    assert kafka_broker.tls is not None
    sink = make_sink(kafka_broker.ssl_bootstrap, topic, ca_file=str(kafka_broker.tls.ca_file),
                     request_timeout_ms="3000")
    async with started(sink):
        with pytest.raises(SinkError) as info:
            await sink.send(b"x")
        assert info.value.retriable is True
        assert not sink.connected


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_sasl_password_from_a_file_authenticates(
    kafka_broker: KafkaBroker, topic: str, mechanism: str, tmp_path: Path
) -> None:
    """Each SASL mechanism logs in with the password read from sasl_password_file and delivers."""
    [(user, password)] = SASL_USERS.items()
    secret = tmp_path / "kafka-password"
    secret.write_text(password + "\n")
    sink = make_sink(kafka_broker.sasl_bootstrap, topic, sasl_mechanism=mechanism, sasl_username=user,
                     sasl_password_file=str(secret))
    async with started(sink):
        await sink.send_many([b"one", b"two"])
    assert [r.value for r in await consume(kafka_broker.bootstrap, topic)] == [b"one", b"two"]


async def test_sasl_password_from_the_environment_authenticates(
    kafka_broker: KafkaBroker, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sasl_password_env names a variable whose value is the password."""
    [(user, password)] = SASL_USERS.items()
    monkeypatch.setenv("XTCP_TEST_KAFKA_PASSWORD", password)
    sink = make_sink(kafka_broker.sasl_bootstrap, topic, sasl_mechanism="SCRAM-SHA-256", sasl_username=user,
                     sasl_password_env="XTCP_TEST_KAFKA_PASSWORD")
    async with started(sink):
        await sink.send(b"env")
    assert [r.value for r in await consume(kafka_broker.bootstrap, topic)] == [b"env"]


async def test_wrong_sasl_password_is_a_retriable_error(
    kafka_broker: KafkaBroker, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused login never delivers and is retried (credentials can be fixed while the buffer holds)."""
    monkeypatch.setenv("XTCP_TEST_KAFKA_PASSWORD", "not-the-password")
    sink = make_sink(kafka_broker.sasl_bootstrap, topic, sasl_mechanism="PLAIN", sasl_username="xtcp",
                     sasl_password_env="XTCP_TEST_KAFKA_PASSWORD", request_timeout_ms="3000")
    async with started(sink):
        with pytest.raises(SinkError) as info:
            await sink.send(b"x")
        assert info.value.retriable is True
