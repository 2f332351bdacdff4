"""Traffic program for the live tests: run *inside* a test network namespace (``ip netns exec NS python traffic.py``).

It opens IPv4, IPv6 and dual-stack listeners, establishes connections in both families (one
v4-mapped, one with cubic instead of the namespace default, one owned by uid 65534, one
half-closed, one closed to TIME-WAIT, one bound but never listening), moves some KB each way on
each, waits until nothing is in flight (so the sockets are quiescent while they are measured),
then prints one line ``READY <json>`` describing what it made and holds every socket until its
stdin closes. Only the standard library: it must run with any Python 3.11.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import time
from typing import Any

BASE_PORT = int(os.environ.get("XTCP_TRAFFIC_BASE_PORT", "40000"))
NOBODY = 65534
_TI_UNACKED = struct.Struct("<I")  # tcpi_unacked @24
_TI_NOTSENT = struct.Struct("<I")  # tcpi_notsent_bytes @144

held: list[socket.socket] = []


def listener(family: int, host: str, port: int, *, v6only: bool | None = None, cc: str | None = None,
             device: str | None = None) -> socket.socket:
    s = socket.socket(family, socket.SOCK_STREAM)
    if device:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    if cc:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
    s.bind((host, port))
    s.listen(16)
    held.append(s)
    return s


def recv_exactly(s: socket.socket, n: int) -> None:
    got = 0
    while got < n:
        chunk = s.recv(min(65536, n - got))
        if not chunk:
            raise RuntimeError(f"peer closed after {got} of {n} bytes")
        got += len(chunk)


def connect(lsock: socket.socket, family: int, addr: tuple[str, int], up: int, down: int, *,
            cc: str | None = None, uid: int | None = None) -> dict[str, Any]:
    """One connection with ``up`` bytes client→server and ``down`` bytes back; both ends are held."""
    if uid is not None:
        os.setegid(uid)
        os.seteuid(uid)  # the socket's owner (sk_uid) is the creator's fsuid
    try:
        c = socket.socket(family, socket.SOCK_STREAM)
    finally:
        if uid is not None:
            os.seteuid(0)
            os.setegid(0)
    if cc:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
    c.connect(addr)
    s, _ = lsock.accept()
    held.extend((c, s))
    if up:
        c.sendall(b"u" * up)
        recv_exactly(s, up)
    if down:
        s.sendall(b"d" * down)
        recv_exactly(c, down)
    cl, sl = c.getsockname(), s.getsockname()
    return {"client_port": cl[1], "server_port": sl[1], "up": up, "down": down, "cc": cc, "uid": uid,
            "family": int(family)}


def tcp_info_busy(s: socket.socket) -> bool:
    """True while the socket still has unacknowledged or unsent data."""
    try:
        raw = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 280)
    except OSError:
        return False
    if s.type != socket.SOCK_STREAM or len(raw) < 148:
        return False
    return bool(_TI_UNACKED.unpack_from(raw, 24)[0] or _TI_NOTSENT.unpack_from(raw, 144)[0])


def default_cc() -> str:
    """This namespace's default congestion control (what sockets without TCP_CONGESTION get)."""
    with open("/proc/sys/net/ipv4/tcp_congestion_control") as f:
        return f.read().strip()


def main() -> None:
    # Never outlive a test run that forgot us.
    signal.alarm(int(os.environ.get("XTCP_TRAFFIC_MAX_S", "600")))
    p = BASE_PORT
    l4 = listener(socket.AF_INET, "127.0.0.1", p + 4)
    l6 = listener(socket.AF_INET6, "::1", p + 6, v6only=True, cc="cubic")
    ld = listener(socket.AF_INET6, "::", p + 46, v6only=False)
    lw = listener(socket.AF_INET, "0.0.0.0", p + 40)
    # Bound to a device: ss prints 127.0.0.1%lo, inet_diag reports idiag_if = lo's index.
    listener(socket.AF_INET, "127.0.0.1", p + 50, device="lo")
    conns = [
        connect(l4, socket.AF_INET, ("127.0.0.1", p + 4), 4096, 8192),
        connect(l4, socket.AF_INET, ("127.0.0.1", p + 4), 65536, 2048),
        connect(l4, socket.AF_INET, ("127.0.0.1", p + 4), 20000, 20000, cc="cubic"),
        connect(l4, socket.AF_INET, ("127.0.0.1", p + 4), 3000, 3000, uid=NOBODY),
        connect(l6, socket.AF_INET6, ("::1", p + 6), 10000, 30000),
        connect(l6, socket.AF_INET6, ("::1", p + 6), 1, 1),
        connect(ld, socket.AF_INET, ("127.0.0.1", p + 46), 5000, 5000),  # v4-mapped on the server side
        connect(ld, socket.AF_INET6, ("::1", p + 46), 7000, 100),
        connect(lw, socket.AF_INET, ("127.0.0.2", p + 40), 1000, 1000),
    ]
    # Half-closed: the client sends its FIN (FIN-WAIT-2), the server never closes (CLOSE-WAIT).
    half = connect(l4, socket.AF_INET, ("127.0.0.1", p + 4), 2000, 500)
    held[-2].shutdown(socket.SHUT_WR)
    # Closed by the client first: the client end lingers in TIME-WAIT.
    tw = connect(l4, socket.AF_INET, ("127.0.0.1", p + 4), 100, 100)
    s_tw = held.pop()
    c_tw = held.pop()
    c_tw.close()
    s_tw.recv(1)  # EOF
    s_tw.close()
    # Bound but neither listening nor connected (state CLOSE).
    bound = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    bound.bind(("127.0.0.1", p + 99))
    held.append(bound)
    deadline = time.monotonic() + 10
    while any(tcp_info_busy(s) for s in held) and time.monotonic() < deadline:
        time.sleep(0.02)
    # Let delayed ACKs and any other short timers run out before anyone measures.
    time.sleep(0.5)
    info = {"pid": os.getpid(), "base_port": p, "connections": conns, "half_closed": half, "time_wait": tw,
            "bound_port": p + 99, "default_cc": default_cc(), "listen_ports": [p + 4, p + 6, p + 46, p + 40, p + 50],
            "device_port": p + 50}
    sys.stdout.write("READY " + json.dumps(info) + "\n")
    sys.stdout.flush()
    sys.stdin.read()  # hold everything until the test closes our stdin


if __name__ == "__main__":
    main()
