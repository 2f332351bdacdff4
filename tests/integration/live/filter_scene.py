"""Scene program for the filter tests: run *inside* a test namespace whose lo carries the extra
addresses below. Opens listeners on many ports and addresses (IPv4, IPv6, dual-stack), connects
to each from several source addresses, closes some client ends first (TIME-WAIT), prints
``READY`` and holds every socket until stdin closes. Standard library only.
"""

from __future__ import annotations

import socket
import sys
import threading
import time

V4 = ["127.0.0.1", "127.0.0.2", "10.7.0.1", "10.7.1.9"]
V6 = ["::1", "fd00:7::1", "fd00:7::2:1"]
PORTS = [22, 80, 443, 1000, 1024, 5000, 8080]
held: list[socket.socket] = []


def listen(family: int, host: str, port: int, v6only: bool = True) -> socket.socket:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    s.bind((host, port))
    s.listen(64)
    held.append(s)
    return s


def connect(family: int, src: str, dst: str, port: int, *, time_wait: bool = False) -> None:
    c = socket.socket(family, socket.SOCK_STREAM)
    c.bind((src, 0))
    c.connect((dst, port))
    c.sendall(b"x" * 100)
    if time_wait:
        c.close()  # the active closer keeps TIME-WAIT
    else:
        held.append(c)


def main() -> None:
    for i, port in enumerate(PORTS):
        listen(socket.AF_INET, V4[i % len(V4)], port)
        listen(socket.AF_INET6, V6[i % len(V6)], port)
    dual = listen(socket.AF_INET6, "::", 9000, v6only=False)  # v4-mapped peers
    listeners = [s for s in held if s is not dual]
    for n, lsock in enumerate(listeners):
        host, port = lsock.getsockname()[:2]
        fam = lsock.family
        srcs = V4 if fam == socket.AF_INET else V6
        for k, src in enumerate(srcs[:2]):
            connect(fam, src, host, port, time_wait=(n + k) % 5 == 0)
    for src in V4[:3]:
        connect(socket.AF_INET, src, "127.0.0.1", 9000)
    connect(socket.AF_INET6, "fd00:7::2:1", "fd00:7::1", 9000)
    accepted = []
    for lsock in held[:]:
        if lsock.type == socket.SOCK_STREAM and lsock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            lsock.setblocking(False)
            while True:
                try:
                    conn, _ = lsock.accept()
                except BlockingIOError:
                    break
                accepted.append(conn)
    time.sleep(0.2)
    for conn in accepted:
        conn.setblocking(False)
        try:
            data = conn.recv(1000)
            if len(data) == 100:
                data = conn.recv(1000)
        except BlockingIOError:
            data = b"?"
        if data == b"":
            conn.close()  # the client closed first: closing here leaves it in TIME-WAIT
        else:
            held.append(conn)
    # TIME-WAIT lasts 60 s: keep making a few so the scene always has some, however long the tests run.
    threading.Thread(target=keep_time_wait, daemon=True).start()
    print("READY", flush=True)
    sys.stdin.read()


def keep_time_wait() -> None:
    lsocks = [listen(socket.AF_INET, "127.0.0.1", 7000), listen(socket.AF_INET6, "fd00:7::1", 7000)]
    while True:
        time.sleep(5.0)
        for lsock, src in zip(lsocks, ("10.7.1.9", "::1"), strict=True):
            c = socket.socket(lsock.family, socket.SOCK_STREAM)
            c.bind((src, 0))
            c.connect(lsock.getsockname()[:2])
            conn, _ = lsock.accept()
            c.close()  # the client closes first and ends in TIME-WAIT once the server closes too
            conn.recv(10)
            conn.close()


if __name__ == "__main__":
    main()
