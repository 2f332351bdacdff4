"""KafkaSink start-up against a peer that accepts TCP and never answers: bounded, and nothing leaks."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings

from aiokafka import errors as kafka_errors

from xtcp_async.sinks import create_sink, parse_sink_url
from xtcp_async.sinks.kafka import KafkaSink


async def test_start_cut_short_by_a_deadline_closes_the_producer() -> None:
    """A start cancelled by the runner's deadline leaves no producer, socket or task behind."""
    with socket.socket() as silent:  # a real listener whose accept queue takes the connection
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        sink = create_sink(parse_sink_url(f"kafka://127.0.0.1:{port}/t?request_timeout_ms=30000"))
        assert isinstance(sink, KafkaSink)
        before = {t for t in asyncio.all_tasks() if not t.done()}
        try:
            async with asyncio.timeout(0.5):
                await sink.start()
        except TimeoutError:
            pass
        assert sink._producer is None
        await asyncio.sleep(0.1)
        leftover = {t for t in asyncio.all_tasks() if not t.done()} - before - {asyncio.current_task()}
        assert not leftover, leftover
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            gc.collect()
        await sink.close()


def test_idempotence_refusal_names_the_option() -> None:
    """When the broker refuses InitProducerId, the error says so and names ?idempotence=false."""
    sink = create_sink(parse_sink_url("kafka://127.0.0.1:9092/t"))
    assert isinstance(sink, KafkaSink) and sink.settings["enable_idempotence"]
    hint = sink._idempotence_hint(kafka_errors.UnknownError())
    assert "InitProducerId" in hint and "?idempotence=false" in hint
    plain = create_sink(parse_sink_url("kafka://127.0.0.1:9092/t?idempotence=false"))
    assert isinstance(plain, KafkaSink) and plain._idempotence_hint(kafka_errors.UnknownError()) == ""


def test_a_refused_sasl_mechanism_is_a_configuration_error() -> None:
    """The broker refusing the SASL mechanism is a ConfigError naming sasl_mechanism; a connection error is not."""
    from xtcp_async.errors import ConfigError
    from xtcp_async.sinks.kafka import config_refusal

    settings = {"sasl_mechanism": "SCRAM-SHA-512"}
    refused = config_refusal(kafka_errors.UnsupportedSaslMechanismError("PLAIN only"), settings)
    assert isinstance(refused, ConfigError) and "sasl_mechanism" in str(refused) and "SCRAM-SHA-512" in str(refused)
    assert config_refusal(kafka_errors.KafkaConnectionError("refused"), settings) is None
