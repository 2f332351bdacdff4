"""NSQ sink URL options: parsed once, bad values rejected with one line naming the option."""

from __future__ import annotations

from pathlib import Path

import pytest

from xtcp_async.errors import ConfigError
from xtcp_async.sinks import create_sink, parse_sink_url
from xtcp_async.sinks.nsq import MAX_SEND_MANY, NsqSink


def sink(url: str) -> NsqSink:
    return NsqSink.from_spec(parse_sink_url(url))


def test_defaults_follow_nsqd_defaults() -> None:
    """A bare URL gets nsqd's 1 MiB message / 5 MiB body limits, 64 MiB buffer, protobuf-list."""
    s = sink("nsq://127.0.0.1/xtcp")
    assert s.addresses == [("127.0.0.1", 4150)]
    assert s.topic == "xtcp"
    assert s.max_payload_bytes == 1024 * 1024
    assert s.options.max_body_bytes == 5 * 1024 * 1024
    assert s.buffer_bytes == 64 * 1024 * 1024
    assert s.max_send_many == MAX_SEND_MANY > 1
    assert (NsqSink.scheme, NsqSink.default_format) == ("nsq", "protobuf-list")
    assert not s.connected


def test_registry_builds_the_nsq_sink() -> None:
    """The nsq:// scheme resolves to NsqSink through the sink registry."""
    assert isinstance(create_sink(parse_sink_url("nsq://a:1,b:2/t")), NsqSink)


def test_several_hosts_and_limits_from_the_url() -> None:
    """Hosts, message/body limits and buffer size are taken from the URL."""
    s = sink("nsq://a:4150,b:4151/t.x-1?max_message_bytes=1000&max_body_bytes=4000&buffer_bytes=99")
    assert s.addresses == [("a", 4150), ("b", 4151)]
    assert (s.max_payload_bytes, s.options.max_body_bytes, s.buffer_bytes) == (1000, 4000, 99)


@pytest.mark.parametrize(("query", "named"), [
    ("colour=red", "colour"),
    ("compression=lz4", "compression"),
    ("reconnect_interval_s=0", "reconnect_interval_s"),
    ("max_message_bytes=0", "max_message_bytes"),
    ("tls=maybe", "tls"),
    ("tls=true&cert_file=/c.pem", "key_file"),
    ("ca_file=/ca.pem", "tls=true"),
    ("max_message_bytes=2000&max_body_bytes=2000", "max_body_bytes"),
    ("auth_secret_file=/s&auth_secret_env=S", "auth_secret_env"),
])
def test_bad_option_is_one_line_naming_it(query: str, named: str) -> None:
    """Every invalid option raises ConfigError whose single line names the option."""
    with pytest.raises(ConfigError) as info:
        sink(f"nsq://127.0.0.1:4150/t?{query}")
    message = str(info.value)
    assert named in message
    assert "\n" not in message


@pytest.mark.parametrize("url", ["nsq://127.0.0.1:4150/", "nsq://127.0.0.1:4150/bad topic",
                                 "nsq://127.0.0.1:4150/" + "x" * 65, "nsq:///xtcp"])
def test_bad_topic_or_missing_host_is_a_config_error(url: str) -> None:
    """A topic nsqd would refuse, or no host at all, fails at configuration time."""
    with pytest.raises(ConfigError, match="sink nsq"):
        sink(url)


def test_auth_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """auth_secret_env names a variable that must be set; its value becomes the AUTH secret."""
    monkeypatch.delenv("XTCP_TEST_NSQ_SECRET", raising=False)
    with pytest.raises(ConfigError, match="XTCP_TEST_NSQ_SECRET"):
        sink("nsq://h/t?auth_secret_env=XTCP_TEST_NSQ_SECRET")
    monkeypatch.setenv("XTCP_TEST_NSQ_SECRET", "s3cret")
    assert sink("nsq://h/t?auth_secret_env=XTCP_TEST_NSQ_SECRET")._auth_secret == b"s3cret"


def test_missing_files_are_config_errors_at_construction(tmp_path: Path) -> None:
    """A missing CA or secret file is a ConfigError naming the option when the sink is built (start-up,
    exit 2), not a failure at the first send."""
    with pytest.raises(ConfigError, match="ca_file"):
        sink(f"nsq://127.0.0.1:1/t?tls=true&ca_file={tmp_path}/missing.pem")
    with pytest.raises(ConfigError, match="auth_secret_file"):
        sink(f"nsq://127.0.0.1:1/t?auth_secret_file={tmp_path}/missing")


async def test_payloads_nsqd_would_reject_are_refused_without_a_connection() -> None:
    """Empty or oversized payloads raise a non-retriable SinkError before any I/O."""
    from xtcp_async.errors import SinkError

    s = sink("nsq://127.0.0.1:1/t?max_message_bytes=10")
    for payload in (b"", b"x" * 11):
        with pytest.raises(SinkError) as info:
            await s.send(payload)
        assert not info.value.retriable
    await s.close()
