"""A real single-node Apache Kafka broker (KRaft) for the tests.

The jars come from ``scripts/install_kafka.sh`` (Maven Central, cached per version). A
:class:`KafkaBroker` formats its own storage, runs ``kafka.Kafka`` under Java 17 on free
loopback ports and can be stopped, killed (SIGKILL, like a crash) and restarted on the same
ports and data directory, which is what the outage tests need. Optional listeners: SSL with a
CA the test makes itself (PEM files, no keytool), and SASL_PLAINTEXT with PLAIN and SCRAM users.

Why a Python class and not a shell script: the tests need to kill and restart the broker in
the middle of a run and to know, without sleeping blindly, when it serves again.
"""

from __future__ import annotations

import base64
import datetime
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: The versions the tests run against: the last 3.x line and the newest 4.x (see docs/kafka.md).
KAFKA_VERSIONS = ("3.9.2", "4.4.0")
LATEST = KAFKA_VERSIONS[-1]

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install_kafka.sh"

#: Printed by KafkaRaftServer once every listener accepts requests (same text in 3.9 and 4.x).
READY_LINE = "Kafka Server started"


class BrokerUnavailableError(RuntimeError):
    """The broker cannot be installed or started here (no java, no jars, no registry)."""


def cache_dir() -> Path:
    return Path(os.environ.get("XTCP_CACHE_DIR", str(Path.home() / ".cache" / "xtcp_async")))


def kafka_libs(version: str) -> Path:
    """The jar directory of ``version``, installing it first when it is not cached yet."""
    home = cache_dir() / f"kafka-{version}"
    if not (home / ".complete").exists():
        if shutil.which("java") is None:
            raise BrokerUnavailableError("java is not on PATH (Kafka needs Java 17+)")
        proc = subprocess.run(["bash", str(INSTALL_SCRIPT), version], capture_output=True, text=True,
                              check=False, timeout=600)
        if proc.returncode != 0:
            raise BrokerUnavailableError(f"scripts/install_kafka.sh {version} failed: {proc.stderr[-2000:]}")
    return home / "libs"


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def new_cluster_id() -> str:
    # Kafka's own Uuid.randomUuid() rejects ids starting with "-": they read as an option.
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


# -- TLS material -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a throw-away CA, a broker certificate and a client certificate."""

    ca_file: Path
    server_pem: Path  # PKCS#8 key followed by the certificate: Kafka's PEM keystore file
    client_cert: Path
    client_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_tls_files(directory: Path) -> TlsFiles:
    """Make a CA and sign a broker cert (127.0.0.1, localhost) and a client cert with it."""
    import ipaddress

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=2))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder().subject_name(_name("xtcp-test-ca")).issuer_name(_name("xtcp-test-ca"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(valid[0]).not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(valid[0]).not_valid_after(valid[1])
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return _key_pem(key), cert.public_bytes(serialization.Encoding.PEM)

    loopback: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                        x509.DNSName("localhost")]
    server_key, server_cert = leaf("127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH, loopback)
    client_key, client_cert = leaf("xtcp-test-client", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "client-cert.pem",
                     directory / "client-key.pem")
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_pem.write_bytes(server_key + server_cert)
    files.client_cert.write_bytes(client_cert)
    files.client_key.write_bytes(client_key)
    return files


# -- the broker -------------------------------------------------------------------------------

_LOG4J1 = """\
log4j.rootLogger=WARN, out
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
"""

_LOG4J2 = """\
appender.out.type=Console
appender.out.name=OUT
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=WARN
rootLogger.appenderRef.out.ref=OUT
logger.raft.name=kafka.server.KafkaRaftServer
logger.raft.level=INFO
"""

# Small heap, serial GC and C1 only: the broker starts in ~2 s on 2 cores and leaves the other
# core to the test; throughput is not what these tests measure.
_JVM_FLAGS = ["-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
              "-Djava.awt.headless=true"]


@dataclass
class KafkaBroker:
    """One single-node KRaft broker (broker + controller in one JVM) on loopback."""

    version: str
    workdir: Path
    tls: TlsFiles | None = None
    #: SASL users (name -> password) served on a SASL_PLAINTEXT listener with PLAIN and SCRAM.
    sasl_users: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    ssl_port: int | None = None
    sasl_port: int | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def __post_init__(self) -> None:
        if self.tls is not None and self.ssl_port is None:
            self.ssl_port = free_port()
        if self.sasl_users and self.sasl_port is None:
            self.sasl_port = free_port()

    # -- addresses --

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ssl_bootstrap(self) -> str:
        assert self.ssl_port is not None, "broker was made without tls"
        return f"127.0.0.1:{self.ssl_port}"

    @property
    def sasl_bootstrap(self) -> str:
        assert self.sasl_port is not None, "broker was made without sasl_users"
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "broker.log"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    # -- configuration --

    def _properties(self) -> str:
        listeners = [f"PLAINTEXT://127.0.0.1:{self.port}"]
        protocol_map = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={self.data_dir}",
            "num.partitions=1",
            "auto.create.topics.enable=true",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            # After a SIGKILL the restarted broker stays fenced until the controller expires the
            # dead incarnation's session (default 9 s); a short session keeps restarts at ~3 s.
            "broker.session.timeout.ms=2000",
            "broker.heartbeat.interval.ms=500",
        ]
        if self.tls is not None:
            listeners.append(f"SSL://127.0.0.1:{self.ssl_port}")
            protocol_map.append("SSL:SSL")
            lines += [
                "listener.name.ssl.ssl.keystore.type=PEM",
                f"listener.name.ssl.ssl.keystore.location={self.tls.server_pem}",
                "listener.name.ssl.ssl.truststore.type=PEM",
                f"listener.name.ssl.ssl.truststore.location={self.tls.ca_file}",
                # Required, so a test proves that cert_file/key_file reach the handshake.
                "listener.name.ssl.ssl.client.auth=required",
            ]
        if self.sasl_users:
            listeners.append(f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}")
            protocol_map.append("SASL_PLAINTEXT:SASL_PLAINTEXT")
            users = " ".join(f'user_{name}="{pw}"' for name, pw in self.sasl_users.items())
            lines += [
                "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
                "listener.name.sasl_plaintext.plain.sasl.jaas.config="
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};",
                "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            ]
        listeners.append(f"CONTROLLER://127.0.0.1:{self.controller_port}")
        lines.append("listeners=" + ",".join(listeners))
        advertised = [x for x in listeners if not x.startswith("CONTROLLER")]
        lines.append("advertised.listeners=" + ",".join(advertised))
        lines.append("listener.security.protocol.map=" + ",".join(protocol_map))
        return "\n".join(lines) + "\n"

    def _java(self, main: str, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise BrokerUnavailableError("java is not on PATH (Kafka needs Java 17+)")
        libs = kafka_libs(self.version)
        return [java, *_JVM_FLAGS, f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}",
                f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
                "-cp", f"{libs}/*", main, *args]

    def _format(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "server.properties").write_text(self._properties())
        (self.workdir / "log4j.properties").write_text(_LOG4J1)
        (self.workdir / "log4j2.properties").write_text(_LOG4J2)
        args = ["format", f"--cluster-id={new_cluster_id()}", "-c", str(self.workdir / "server.properties")]
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            for name, pw in self.sasl_users.items():
                args += ["--add-scram", f"{mech}=[name={name},password={pw}]"]
        proc = subprocess.run(self._java("kafka.tools.StorageTool", *args), capture_output=True, text=True,
                              check=False, timeout=120)
        if proc.returncode != 0:
            raise BrokerUnavailableError(
                f"kafka {self.version} storage format failed: {proc.stdout}{proc.stderr}")

    # -- life cycle --

    def start(self, timeout_s: float = 90.0) -> None:
        """Start the broker (formatting storage the first time) and wait until it serves."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("broker already running")
        if not (self.data_dir / "meta.properties").exists():
            self._format()
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:
            # Own session: a SIGKILL to the broker never reaches pytest's process group.
            command = self._java("kafka.Kafka", str(self.workdir / "server.properties"))
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        self.starts += 1
        self._wait_ready(offset, timeout_s)

    def _wait_ready(self, offset: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerUnavailableError(
                    f"kafka {self.version} exited with {self.process.returncode}: {self.log_tail()}")
            with self.log_file.open("rb") as f:
                f.seek(offset)
                if READY_LINE.encode() in f.read():
                    return
            time.sleep(0.1)
        self.kill()
        raise BrokerUnavailableError(f"kafka {self.version} not ready after {timeout_s}s: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL, like a crash or an OOM kill: no controlled shutdown, no flush."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Controlled shutdown (SIGTERM); killed if it takes longer than ``timeout_s``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self, timeout_s: float = 90.0) -> None:
        """Start again on the same ports and data directory (after :meth:`kill` or :meth:`stop`)."""
        self.stop()
        self.start(timeout_s)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        if not self.log_file.exists():
            return "(no log)"
        return self.log_file.read_text(errors="replace")[-chars:]
