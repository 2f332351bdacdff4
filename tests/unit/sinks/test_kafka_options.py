"""KafkaSink options: parsed from the URL into producer settings, refused with one clear line."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from xtcp_async.errors import ConfigError
from xtcp_async.sinks import create_sink, parse_sink_url
from xtcp_async.sinks.kafka import KafkaSink, max_value_bytes, translate
from xtcp_async.sinks.runner import DEFAULT_BUFFER_BYTES


def sink(url: str) -> KafkaSink:
    made = create_sink(parse_sink_url(url))
    assert isinstance(made, KafkaSink)
    return made


def config_error(url: str) -> str:
    with pytest.raises(ConfigError) as info:
        create_sink(parse_sink_url(url))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_are_zstd_acks_all_idempotent_protobuf_list() -> None:
    """A bare URL gives zstd, acks=all with idempotence, no key, 1 MiB requests and a 64 MiB buffer."""
    s = sink("kafka://127.0.0.1:9092/xtcp")
    assert s.topic == "xtcp"
    assert s.default_format == "protobuf-list"
    assert s.settings["bootstrap_servers"] == ["127.0.0.1:9092"]
    assert s.settings["compression_type"] == "zstd"
    assert s.settings["acks"] == "all"
    assert s.settings["enable_idempotence"] is True
    assert s.settings["security_protocol"] == "PLAINTEXT"
    assert s.settings["max_request_size"] == 1_048_576
    assert s.key is None
    assert s.buffer_bytes == DEFAULT_BUFFER_BYTES
    assert not s.connected


def test_every_option_reaches_the_producer_settings() -> None:
    """Hosts without a port get 9092; numeric options arrive as numbers; compression=none is None."""
    s = sink("kafka://a,b:9093/t?compression=none&acks=1&linger_ms=7&client_id=edge&batch_size=32768"
             "&max_request_size=2097152&request_timeout_ms=5000&max_in_flight=4&buffer_bytes=1000")
    assert s.settings["bootstrap_servers"] == ["a:9092", "b:9093"]
    assert s.settings["compression_type"] is None
    assert s.settings["acks"] == 1
    assert s.settings["enable_idempotence"] is False
    assert s.settings["linger_ms"] == 7
    assert s.settings["client_id"] == "edge"
    assert s.settings["max_batch_size"] == 32768
    assert s.settings["request_timeout_ms"] == 5000
    assert s.max_send_many == 4
    assert s.buffer_bytes == 1000


def test_options_from_a_config_file_are_accepted_and_lose_to_the_url() -> None:
    """The config file's option dict and the URL query are the same options; the URL wins."""
    spec = parse_sink_url("kafka://h:1/t?compression=lz4", {"compression": "gzip", "acks": "1"})
    s = KafkaSink.from_spec(spec)
    assert s.settings["compression_type"] == "lz4"
    assert s.settings["acks"] == 1


@pytest.mark.parametrize("compression", ["gzip", "snappy", "lz4", "zstd"])
def test_every_codec_library_is_installed(compression: str) -> None:
    """Each compression type is accepted here, i.e. aiokafka finds its codec library."""
    assert sink(f"kafka://h/t?compression={compression}").settings["compression_type"] == compression


def test_max_payload_bytes_is_the_largest_value_aiokafka_accepts() -> None:
    """One byte more than max_payload_bytes would exceed max_request_size in aiokafka's own estimate."""
    for size, key in [(1_048_576, None), (65_536, b"edge-01.example.net"), (1024, None)]:
        n = max_value_bytes(size, key)
        assert DefaultRecordBatchBuilder.estimate_size_in_bytes(key, bytes(n), []) <= size
        assert DefaultRecordBatchBuilder.estimate_size_in_bytes(key, bytes(n + 1), []) > size
    assert sink("kafka://h/t?max_request_size=65536").max_payload_bytes == max_value_bytes(65_536, None)


def test_key_hostname_uses_the_option_or_the_machine_name() -> None:
    """key=hostname takes key_hostname when given, else socket.gethostname()."""
    import socket

    assert sink("kafka://h/t?key=hostname&key_hostname=edge-7").key == b"edge-7"
    assert sink("kafka://h/t?key=hostname").key == socket.gethostname().encode()


@pytest.mark.parametrize("name", ["sasl_password", "password", "sasl_plain_password"])
def test_a_password_in_the_url_is_refused(name: str) -> None:
    """A password option is refused and the message points at the file and env options."""
    message = config_error(f"kafka://h/t?sasl_mechanism=PLAIN&sasl_username=u&{name}=hunter2")
    assert name in message
    assert "sasl_password_file" in message
    assert "hunter2" not in message


def test_credentials_in_the_netloc_are_refused() -> None:
    """kafka://user:pass@host is refused before the sink is even built."""
    assert "credentials" in config_error("kafka://u:p@h:9092/t")


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("compression=brotli", "compression"),
        ("acks=2", "acks"),
        ("linger_ms=-1", "linger_ms"),
        ("batch_size=lots", "batch_size"),
        ("max_request_size=10", "max_request_size"),
        ("key=ip", "key"),
        ("check_hostname=maybe", "check_hostname"),
        ("sasl_mechanism=GSSAPI", "sasl_mechanism"),
        ("acks=1&idempotence=true", "idempotence"),
        ("colour=blue", "colour"),
    ],
)
def test_a_bad_option_is_one_line_naming_it(query: str, needle: str) -> None:
    """Every invalid value or unknown option is a ConfigError that names the option."""
    assert needle in config_error(f"kafka://h/t?{query}")


def test_unknown_option_lists_the_allowed_ones() -> None:
    """A typo shows the valid option names."""
    message = config_error("kafka://h/t?compresion=zstd")
    assert "compresion" in message
    assert "compression" in message


@pytest.mark.parametrize("topic", ["", "a b", "x" * 250, "..", "t/u"])
def test_an_invalid_topic_is_refused(topic: str) -> None:
    """Topic names follow Kafka's rule: 1-249 of letters, digits, dot, underscore, dash."""
    assert "topic" in config_error(f"kafka://h/{topic}")


def test_a_url_without_broker_is_refused() -> None:
    """kafka:///topic names no broker."""
    assert "broker" in config_error("kafka:///t")


def test_sasl_needs_a_user_and_exactly_one_password_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sasl_mechanism without user, without or with both password sources, or an unset variable, is refused."""
    secret = tmp_path / "pw"
    secret.write_text("pw\n")
    assert "sasl_username" in config_error(f"kafka://h/t?sasl_mechanism=PLAIN&sasl_password_file={secret}")
    assert "exactly one" in config_error("kafka://h/t?sasl_mechanism=PLAIN&sasl_username=u")
    assert "exactly one" in config_error(
        f"kafka://h/t?sasl_mechanism=PLAIN&sasl_username=u&sasl_password_file={secret}&sasl_password_env=X")
    monkeypatch.delenv("XTCP_UNSET_PASSWORD", raising=False)
    assert "XTCP_UNSET_PASSWORD" in config_error(
        "kafka://h/t?sasl_mechanism=PLAIN&sasl_username=u&sasl_password_env=XTCP_UNSET_PASSWORD")
    assert "cannot read" in config_error(
        f"kafka://h/t?sasl_mechanism=PLAIN&sasl_username=u&sasl_password_file={tmp_path / 'missing'}")


def test_sasl_password_file_loses_only_its_trailing_newline(tmp_path: Path) -> None:
    """The file's content is the password, minus the one newline an editor adds; TLS makes it SASL_SSL."""
    secret = tmp_path / "pw"
    secret.write_text(" p w \n")
    s = sink(f"kafka://h/t?sasl_mechanism=SCRAM-SHA-512&sasl_username=u&sasl_password_file={secret}")
    assert s.settings["sasl_plain_password"] == " p w "
    assert s.settings["sasl_mechanism"] == "SCRAM-SHA-512"
    assert s.settings["security_protocol"] == "SASL_PLAINTEXT"
    s = sink(f"kafka://h/t?sasl_mechanism=PLAIN&sasl_username=u&sasl_password_file={secret}&tls=true")
    assert s.settings["security_protocol"] == "SASL_SSL"


def test_tls_options_build_an_ssl_context(tmp_path: Path) -> None:
    """tls=true uses the system CAs; check_hostname=false turns the check off; bad files are refused."""
    s = sink("kafka://h/t?tls=true&check_hostname=false")
    ctx = s.settings["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.check_hostname is False
    assert s.settings["security_protocol"] == "SSL"
    assert "cannot be loaded" in config_error(f"kafka://h/t?ca_file={tmp_path / 'nope.pem'}")
    assert "go together" in config_error(f"kafka://h/t?cert_file={tmp_path / 'c.pem'}")
    assert "tls=false" in config_error(f"kafka://h/t?tls=false&ca_file={tmp_path / 'c.pem'}")


def test_errors_about_the_payload_are_not_retried_and_the_rest_are() -> None:
    """A too-large record is dropped by the runner; timeouts, lost connections and auth are retried."""
    from aiokafka import errors

    assert translate(errors.MessageSizeTooLargeError(), "t").retriable is False
    assert translate(errors.RecordTooLargeError(), "t").retriable is False
    assert translate(errors.KafkaTimeoutError(), "t").retriable is True
    assert translate(errors.KafkaConnectionError(), "t").retriable is True
    assert translate(errors.TopicAuthorizationFailedError(), "t").retriable is True


async def test_close_without_start_is_harmless() -> None:
    """close() on a sink that never connected, twice, does nothing and leaves it disconnected."""
    s = sink("kafka://127.0.0.1:1/t")
    await s.close()
    await s.close()
    assert not s.connected
