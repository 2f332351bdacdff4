"""AUTH against a real nsqd that asks a (test-made) auth server over HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from nsq_helpers import make_sink, payloads, running, wait_until

from tests.brokers.nsqd import Nsqd

pytestmark = pytest.mark.nsq

SECRET = "s3cret-for-xtcp"


class _Auth(BaseHTTPRequestHandler):
    """nsqd's auth protocol: GET /auth?remote_ip=&tls=&secret= → identity and permissions."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        secret = query.get("secret", [""])[0]
        type(self).seen.append(secret)
        if secret != SECRET:
            self.send_response(403)
            self.end_headers()
            return
        body = json.dumps({"ttl": 3600, "identity": "xtcp", "authorizations": [
            {"permissions": ["publish"], "topic": ".*", "channels": [".*"]}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def auth_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Auth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Auth.seen = []
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_auth_secret_from_env_lets_payloads_through(
        nsqd_factory: Callable[..., Nsqd], auth_server: str, topic: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the right secret (read from the environment) every payload is acknowledged."""
    daemon = nsqd_factory(extra_args=(f"--auth-http-address={auth_server}",))
    monkeypatch.setenv("XTCP_TEST_NSQ_SECRET", SECRET)
    sent = payloads(20)
    async with running(make_sink(daemon.tcp_address, topic, auth_secret_env="XTCP_TEST_NSQ_SECRET")) as runner:
        for p in sent:
            runner.put(p)
        await wait_until(lambda: runner.stats.payloads_delivered == len(sent), 20, "delivery")
    assert SECRET in _Auth.seen
    assert daemon.topic_message_count(topic) == len(sent)


async def test_wrong_secret_delivers_nothing_and_says_so(
        nsqd_factory: Callable[..., Nsqd], auth_server: str, topic: str, tmp_path: object) -> None:
    """A secret the auth server refuses: nothing is published, the runner records the error."""
    from pathlib import Path

    daemon = nsqd_factory(extra_args=(f"--auth-http-address={auth_server}",))
    secret_file = Path(str(tmp_path)) / "secret"
    secret_file.write_text("wrong\n")
    async with running(make_sink(daemon.tcp_address, topic, auth_secret_file=str(secret_file))) as runner:
        runner.put(b"x" * 10)
        await wait_until(lambda: runner.stats.delivery_errors > 0, 20, "a delivery error")
        assert runner.stats.payloads_delivered == 0
        assert runner.last_error is not None
    assert "wrong" in _Auth.seen
    assert daemon.topic_message_count(topic) == 0
