"""Hold N established TCP connections on loopback, with a little traffic on each, for the benchmark.

The per-process open-file hard limit on the bench machines is 20,000, so the connections are spread
over worker process pairs: one acceptor (listening socket plus the accepted ends) and one connector
(the client ends) per pair, each holding at most ``per_worker`` connections. Every pair gets its own
listening port (chosen by the kernel) and its own 127.0.0.x source address, so no single
(source, destination, port) tuple gets anywhere near the ~28k ephemeral ports it can use, and the
system's ``ip_local_port_range`` never needs widening.

Lifetime: ``with LoadGen(connections=60_000) as lg:`` returns once every connection has exchanged its
payload both ways and the kernel reports 2N established sockets on the workers' ports; leaving the
block stops every worker. Workers also die with their parent (``PR_SET_PDEATHSIG``, and EOF on their
stdin), and every socket has ``SO_LINGER`` 0, so a teardown sends RSTs instead of leaving 120k sockets
in TIME_WAIT that would skew the next measurement.

Also runnable by hand: ``python -m bench.loadgen --connections 60000`` holds until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import resource
import select
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

# Stays under the 9,000 fds per process the issue allows, leaving room for the listener and stdio.
DEFAULT_PER_WORKER = 8_000
DEFAULT_PAYLOAD_BYTES = 4_096
# Connections a connector opens before reading their replies. It bounds the acceptor's accept queue
# (somaxconn is 4096 here); a full queue drops SYNs and costs a 1 s SYN retransmit per connection.
DEFAULT_WINDOW = 512
LISTEN_HOST = "127.0.0.1"

# Linux socket option numbers not exported by the socket module on every Python version.
_IP_BIND_ADDRESS_NO_PORT = 24
_PR_SET_PDEATHSIG = 1

_REPO_ROOT = Path(__file__).resolve().parents[1]


class LoadGenError(RuntimeError):
    """A worker failed, or the connections did not all come up in time."""


# ---------------------------------------------------------------------------------------------------
# Worker side: runs in the child processes.


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this worker when its parent dies, so no sockets outlive a crash."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The parent may have died before prctl ran; then no signal would ever come.
    if os.getppid() != parent_pid:
        os._exit(1)


def _linger_zero(sock: socket.socket) -> None:
    # On close, send RST and free the socket at once: no TIME_WAIT left behind after a run.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _recv_exactly(sock: socket.socket, nbytes: int) -> None:
    view = memoryview(bytearray(nbytes))
    got = 0
    while got < nbytes:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise LoadGenError(f"peer closed after {got} of {nbytes} bytes")
        got += n


def _hold_until_stdin_closes() -> None:
    # The parent keeps our stdin open for as long as it wants the sockets held.
    with contextlib.suppress(KeyboardInterrupt):
        while os.read(0, 4096):
            pass


def _hold_with_traffic(busy: list[socket.socket], every_s: float) -> None:
    """Hold until stdin closes, sending one byte on each ``busy`` socket every ``every_s`` seconds.

    Both ends' counters move (bytes_acked here, bytes_received at the peer), so a share of the
    connections is "active" in every poll interval longer than ``every_s``: change-only mode's bench.
    """
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            ready, _, _ = select.select([0], [], [], every_s)
            if ready and not os.read(0, 4096):
                return
            for sock in busy:
                sock.send(b"b")


def _run_acceptor(listen_host: str, expect: int, payload_bytes: int) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((listen_host, 0))
    listener.listen(4096)
    print(f"port {listener.getsockname()[1]}", flush=True)
    payload = b"s" * payload_bytes
    held: list[socket.socket] = []
    while len(held) < expect:
        conn, _ = listener.accept()
        # Connectors send first, so this read never waits on a reply of ours: no deadlock.
        _recv_exactly(conn, payload_bytes)
        conn.sendall(payload)
        _linger_zero(conn)
        held.append(conn)
    listener.close()
    print(f"ready {len(held)}", flush=True)
    _hold_until_stdin_closes()


def _run_connector(target: tuple[str, int], source_host: str, count: int, payload_bytes: int,
                   window: int, busy: int = 0, busy_every_s: float = 0.25) -> None:
    payload = b"c" * payload_bytes
    held: list[socket.socket] = []
    while len(held) < count:
        batch: list[socket.socket] = []
        for _ in range(min(window, count - len(held))):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # Pick the port at connect() time from the full 4-tuple instead of reserving it at bind().
            sock.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source_host, 0))
            sock.connect(target)
            sock.sendall(payload)
            batch.append(sock)
        for sock in batch:
            _recv_exactly(sock, payload_bytes)
            _linger_zero(sock)
        held.extend(batch)
    print(f"ready {len(held)}", flush=True)
    if busy:
        _hold_with_traffic(held[:busy], busy_every_s)
    else:
        _hold_until_stdin_closes()


def _worker_main(args: argparse.Namespace) -> None:
    _die_with_parent(args.parent_pid)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        if args.worker == "acceptor":
            _run_acceptor(args.listen, args.count, args.payload_bytes)
        else:
            host, _, port = args.target.rpartition(":")
            _run_connector((host, int(port)), args.source, args.count, args.payload_bytes, args.window,
                           args.busy, args.busy_every)
    except (OSError, LoadGenError) as exc:
        print(f"error {type(exc).__name__}: {exc}", flush=True)
        sys.exit(1)


# ---------------------------------------------------------------------------------------------------
# Parent side.


@dataclass
class _Worker:
    role: str
    proc: subprocess.Popen[bytes]
    buffer: bytes = b""
    lines: list[str] = field(default_factory=list)


def count_established(ports: list[int]) -> int:
    """Count established TCP sockets with one of ``ports`` as local or remote port (both ends)."""
    if not ports:
        return 0
    terms = " or ".join(f"sport = :{p} or dport = :{p}" for p in ports)
    # ss compiles the filter to inet_diag bytecode, so the kernel does the matching; -H: no header.
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( {terms} )"],
        check=True, capture_output=True,
    ).stdout
    return out.count(b"\n")


class LoadGen:
    """Hold ``connections`` established loopback TCP connections (2× as many sockets) until closed."""

    def __init__(
        self,
        connections: int,
        *,
        per_worker: int = DEFAULT_PER_WORKER,
        payload_bytes: int = DEFAULT_PAYLOAD_BYTES,
        window: int = DEFAULT_WINDOW,
        timeout_s: float = 300.0,
        busy_share: float = 0.0,
        busy_every_s: float = 0.25,
        source_net: str = "127.0.0",
    ) -> None:
        if connections < 1:
            raise ValueError("connections must be at least 1")
        if not 1 <= per_worker <= 9_000:
            raise ValueError("per_worker must be in 1..9000 (the fd limit per process is 20,000)")
        self.connections = connections
        self.per_worker = per_worker
        self.payload_bytes = payload_bytes
        self.window = window
        self.timeout_s = timeout_s
        #: Share of connections that keep sending a byte every ``busy_every_s`` (0: all idle).
        self.busy_share = busy_share
        self.busy_every_s = busy_every_s
        #: Connector i binds to {source_net}.{2 + i}: a bench can pick a network nobody else uses.
        self.source_net = source_net
        self.ports: list[int] = []
        #: Seconds from the first worker start until every connection was established and counted.
        self.setup_s: float = 0.0
        self._workers: list[_Worker] = []

    @property
    def sockets(self) -> int:
        """Established sockets held: both ends of every connection."""
        return 2 * self.connections

    def __enter__(self) -> LoadGen:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _spawn(self, role: str, extra: list[str]) -> _Worker:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "bench.loadgen", "--worker", role,
               "--parent-pid", str(os.getpid()), "--payload-bytes", str(self.payload_bytes), *extra]
        # Own session: a Ctrl-C in the terminal reaches only us, and we tear the workers down in order.
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                start_new_session=True)
        worker = _Worker(role, proc)
        self._workers.append(worker)
        return worker

    def _await_lines(self, workers: list[_Worker], prefix: str, deadline: float) -> list[str]:
        """Wait until each worker printed a line starting with ``prefix``; return those lines."""
        sel = selectors.DefaultSelector()
        try:
            pending: dict[int, _Worker] = {}
            for w in workers:
                assert w.proc.stdout is not None
                fd = w.proc.stdout.fileno()
                pending[fd] = w
                sel.register(fd, selectors.EVENT_READ)
            found: dict[int, str] = {}
            while len(found) < len(workers):
                for w in pending.values():
                    while w.lines and id(w) not in found:
                        line = w.lines.pop(0)
                        if line.startswith("error"):
                            raise LoadGenError(f"{w.role} worker pid {w.proc.pid}: {line}")
                        if line.startswith(prefix):
                            found[id(w)] = line
                if len(found) == len(workers):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LoadGenError(f"timed out waiting for {prefix!r} from the workers")
                for key, _ in sel.select(remaining):
                    w = pending[int(key.fd)]
                    chunk = os.read(int(key.fd), 65536)
                    if not chunk:
                        sel.unregister(key.fd)
                        w.proc.wait()
                        said = " | ".join([*w.lines, w.buffer.decode(errors="replace")]).strip(" |")
                        raise LoadGenError(f"{w.role} worker pid {w.proc.pid} exited "
                                           f"({w.proc.returncode}) early: {said or 'no output'}")
                    w.buffer += chunk
                    *complete, w.buffer = w.buffer.split(b"\n")
                    w.lines.extend(c.decode() for c in complete)
            return [found[id(w)] for w in workers]
        finally:
            sel.close()

    def start(self) -> None:
        """Start the workers and return once every connection is established (or raise, torn down)."""
        started = time.monotonic()
        deadline = started + self.timeout_s
        try:
            shares = [min(self.per_worker, self.connections - i)
                      for i in range(0, self.connections, self.per_worker)]
            if len(shares) > 250:
                raise ValueError("too many workers: 127.0.0.x source addresses run out")
            acceptors = [self._spawn("acceptor", ["--listen", LISTEN_HOST, "--count", str(n)])
                         for n in shares]
            self.ports = [int(line.split()[1])
                          for line in self._await_lines(acceptors, "port ", deadline)]
            connectors = [
                self._spawn("connector", ["--target", f"{LISTEN_HOST}:{port}",
                                          "--source", f"{self.source_net}.{2 + i}", "--count", str(n),
                                          "--window", str(self.window),
                                          "--busy", str(round(n * self.busy_share)),
                                          "--busy-every", str(self.busy_every_s)])
                for i, (port, n) in enumerate(zip(self.ports, shares, strict=True))
            ]
            self._await_lines(connectors + acceptors, "ready ", deadline)
            seen = count_established(self.ports)
            if seen != self.sockets:
                raise LoadGenError(f"expected {self.sockets} established sockets, the kernel shows {seen}")
            self.setup_s = time.monotonic() - started
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop every worker (idempotent); their sockets close with RST, leaving nothing behind."""
        workers, self._workers = self._workers, []
        for w in workers:
            with contextlib.suppress(OSError):
                if w.proc.stdin is not None:
                    w.proc.stdin.close()
            # SIGTERM rather than waiting for EOF: a worker still setting up sits in accept() or
            # recv() and would not notice. Its sockets close as the process exits, with RST.
            with contextlib.suppress(ProcessLookupError):
                w.proc.terminate()
        deadline = time.monotonic() + timeout_s
        for w in workers:
            try:
                w.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
            if w.proc.stdout is not None:
                w.proc.stdout.close()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.split("\n")[0])
    p.add_argument("--connections", type=int, default=1_000,
                   help="established connections to hold (sockets = 2x this); default 1000")
    p.add_argument("--per-worker", type=int, default=DEFAULT_PER_WORKER)
    p.add_argument("--payload-bytes", type=int, default=DEFAULT_PAYLOAD_BYTES,
                   help="bytes sent each way on every connection")
    p.add_argument("--window", type=int, default=DEFAULT_WINDOW, help=argparse.SUPPRESS)
    # Worker mode: the parent's own use of this module.
    p.add_argument("--worker", choices=["acceptor", "connector"], help=argparse.SUPPRESS)
    p.add_argument("--parent-pid", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--listen", help=argparse.SUPPRESS)
    p.add_argument("--target", help=argparse.SUPPRESS)
    p.add_argument("--source", help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--busy", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--busy-every", type=float, default=0.25, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.worker:
        _worker_main(args)
        return 0
    # A plain `kill` (SIGTERM) should tear down as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with LoadGen(args.connections, per_worker=args.per_worker, payload_bytes=args.payload_bytes,
                 window=args.window) as lg:
        print(f"holding {lg.sockets} established sockets ({lg.connections} connections, "
              f"{len(lg.ports)} worker pairs, ports {lg.ports}); set-up took {lg.setup_s:.2f} s. "
              "Ctrl-C stops.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    print("stopped; all workers gone", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
