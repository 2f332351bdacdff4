"""A real nsqd for the tests: free loopback ports, its own data directory, stop/kill/restart.

The binaries come from ``scripts/install_nsq.sh`` (Go module proxy, cached per version); this
module runs that script when they are missing, so a fresh clone needs nothing but Go.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
NSQ_VERSION = os.environ.get("NSQ_VERSION", "v1.3.0")
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install_nsq.sh"


def nsq_bin_dir() -> Path:
    """Where install_nsq.sh puts the binaries (same rule as the script)."""
    cache = Path(os.environ.get("XTCP_CACHE_DIR", Path.home() / ".cache" / "xtcp_async"))
    return cache / f"nsq-{NSQ_VERSION.removeprefix('v')}" / "bin"


def ensure_nsq_installed() -> Path:
    """Return the bin dir holding nsqd and nsq_tail, installing them first if needed.

    Raises RuntimeError with the script's output when it cannot install them.
    """
    bin_dir = nsq_bin_dir()
    if not (bin_dir / "nsqd").exists():
        proc = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True,
                              timeout=600, check=False)
        if proc.returncode != 0 or not (bin_dir / "nsqd").exists():
            raise RuntimeError(f"install_nsq.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return bin_dir


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost signed by it."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """Create a self-signed CA and a server certificate for 127.0.0.1 in ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "xtcp_async test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    return files


class Nsqd:
    """One nsqd process on loopback; ports and data directory survive :meth:`restart`."""

    def __init__(self, bin_dir: Path, data_dir: Path, *, tls: TlsFiles | None = None,
                 max_msg_size: int | None = None, max_body_size: int | None = None,
                 durable: bool = False, extra_args: tuple[str, ...] = ()) -> None:
        self.binary = bin_dir / "nsqd"
        self.data_dir = data_dir
        self.tcp_port = free_port()
        self.http_port = free_port()
        self.tls = tls
        self._args: list[str] = []
        if max_msg_size is not None:
            self._args.append(f"--max-msg-size={max_msg_size}")
        if max_body_size is not None:
            self._args.append(f"--max-body-size={max_body_size}")
        if durable:
            # Every message straight to the disk queue with its metadata synced, so what nsqd
            # acknowledged survives a SIGKILL (the defaults keep up to 10000 in memory).
            self._args += ["--mem-queue-size=0", "--sync-every=1"]
        if tls is not None:
            self._args += [f"--tls-cert={tls.cert_file}", f"--tls-key={tls.key_file}"]
        self._args += list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_file = data_dir / "nsqd.log"

    @property
    def tcp_address(self) -> str:
        return f"127.0.0.1:{self.tcp_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start nsqd and return once its /ping answers OK."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(self.binary), f"--tcp-address={self.tcp_address}",
               f"--http-address=127.0.0.1:{self.http_port}", f"--data-path={self.data_dir}",
               "--log-level=warn", *self._args]
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nsqd exited with {self.proc.returncode}:\n{self.log_text()}")
            if self._ping():
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"nsqd did not answer /ping within {timeout_s}s:\n{self.log_text()}")

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http_url}/ping", timeout=1) as resp:
                return bool(resp.read() == b"OK")
        except (OSError, urllib.error.URLError):
            return False

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (nsqd persists its in-memory messages) and wait."""
        self._signal(signal.SIGTERM, timeout_s)

    def kill(self) -> None:
        """SIGKILL: nsqd vanishes without closing anything."""
        self._signal(signal.SIGKILL, 10.0)

    def _signal(self, sig: signal.Signals, timeout_s: float) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def restart(self) -> None:
        """Start again on the same ports and data directory."""
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    # -- HTTP API helpers -----------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.http_url}/stats?format=json", timeout=5) as resp:
            data: dict[str, Any] = json.loads(resp.read())
        return data

    def topic_message_count(self, topic: str) -> int:
        """How many messages nsqd took for ``topic`` since it started (0 if it does not exist)."""
        for entry in self.stats().get("topics", []):
            if entry.get("topic_name") == topic:
                return int(entry.get("message_count", 0))
        return 0

    def create_topic(self, topic: str) -> None:
        req = urllib.request.Request(f"{self.http_url}/topic/create?topic={topic}", method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            resp.read()

    # -- asyncio conveniences (the blocking calls above, off the event loop) ----------------

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    async def akill(self) -> None:
        await asyncio.to_thread(self.kill)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)


def consume(tcp_address: str, topic: str, count: int, timeout_s: float = 20.0,
            *, settle_s: float = 0.3) -> list[bytes]:
    """Read ``count`` messages of ``topic`` back with pynsq's Reader (an independent client).

    Runs the Reader on its own event loop in a worker thread: pynsq leaves timers behind when
    closed (reconnect, periodic checks) and they must not leak into the test's loop. After
    ``count`` messages it waits ``settle_s`` more so that extra (duplicate) messages show up too.
    """
    import threading

    result: list[bytes] = []
    failure: list[BaseException] = []

    async def run() -> None:
        import nsq

        got_all = asyncio.Event()

        def handler(message: Any) -> bool:
            result.append(bytes(message.body))
            if len(result) >= count:
                got_all.set()
            return True

        reader = nsq.Reader(topic=topic, channel="test", message_handler=handler,
                            nsqd_tcp_addresses=[tcp_address], max_in_flight=1000)
        try:
            async with asyncio.timeout(timeout_s):
                await got_all.wait()
            await asyncio.sleep(settle_s)
        except TimeoutError:
            pass
        finally:
            reader.close()
            await asyncio.sleep(0.05)  # let the close reach the socket

    def target() -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(run())
        except BaseException as exc:
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=target, name="nsq-consumer", daemon=True)
    thread.start()
    thread.join(timeout_s + 10)
    if failure:
        raise failure[0]
    return result
