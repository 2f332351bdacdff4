"""The floor: dump every TCP socket over NETLINK_SOCK_DIAG and throw the bytes away, ``--count`` times.

Deliberately stdlib-only and separate from the package: it shows what the kernel and one recv loop
cost with no decoding at all, whatever state the package's netlink layer is in. It asks for what the
service asks for (both families, every state, every extension that fits in ``idiag_ext``) so the
kernel does the same work for both.

``--record PATH`` also saves one dump's chunks (exactly as recv returned them) for the replay mode.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
from pathlib import Path

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x01
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
# Attributes 1..7 (MEMINFO … SKMEMINFO); SHUTDOWN (8) is sent whether asked for or not.
EXT_ALL = 0x7F
ALL_STATES = 0xFFFFFFFF
# Large enough that the kernel never truncates a message, small enough to stay in cache.
RECV_BUFFER_BYTES = 64 * 1024

_NLMSGHDR = struct.Struct("=IHHII")
# inet_diag_req_v2: family, protocol, ext, pad, states, then a zeroed inet_diag_sockid (48 bytes).
_REQ = struct.Struct("=BBBxI48x")

# File format of a recorded dump: magic, then per chunk a u32 length and the bytes.
RECORD_MAGIC = b"XTCPDUMP1\n"
_CHUNK_LEN = struct.Struct("<I")


def _request(family: int, seq: int, bytecode: bytes = b"") -> bytes:
    body = _REQ.pack(family, socket.IPPROTO_TCP, EXT_ALL, ALL_STATES)
    if bytecode:
        # INET_DIAG_REQ_BYTECODE (1): the kernel runs the filter program before building a reply.
        body += struct.pack("=HH", 4 + len(bytecode), 1) + bytecode
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY,
                          NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def dump(sock: socket.socket, family: int, seq: int, buf: bytearray,
         keep: list[bytes] | None = None, bytecode: bytes = b"") -> tuple[int, int]:
    """Run one dump of ``family``; return (bytes, recv calls). Chunks are kept only when asked."""
    sock.send(_request(family, seq, bytecode))
    view = memoryview(buf)
    total = calls = 0
    while True:
        n = sock.recv_into(view)
        calls += 1
        total += n
        if keep is not None:
            keep.append(bytes(view[:n]))
        # No parsing: a dump's end is an NLMSG_DONE (or an error) that the kernel puts last in a
        # chunk, so checking the chunk's first header and its last 20 bytes finds it.
        _, first_type, _, _, _ = _NLMSGHDR.unpack_from(view, 0)
        if first_type == NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", view, _NLMSGHDR.size)
            raise OSError(-error, f"sock_diag dump failed: {os.strerror(-error)}")
        if first_type == NLMSG_DONE:
            return total, calls
        if n >= 20:
            length, last_type, _, last_seq, _ = _NLMSGHDR.unpack_from(view, n - 20)
            if length == 20 and last_type == NLMSG_DONE and last_seq == seq:
                return total, calls


def write_record(path: Path, chunks: list[bytes]) -> None:
    with path.open("wb") as f:
        f.write(RECORD_MAGIC)
        for chunk in chunks:
            f.write(_CHUNK_LEN.pack(len(chunk)))
            f.write(chunk)


def read_record(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if not data.startswith(RECORD_MAGIC):
        raise ValueError(f"{path}: not a recorded dump")
    chunks: list[bytes] = []
    pos = len(RECORD_MAGIC)
    while pos < len(data):
        (n,) = _CHUNK_LEN.unpack_from(data, pos)
        pos += _CHUNK_LEN.size
        chunks.append(data[pos:pos + n])
        pos += n
    return chunks


def _project_dumps(count: int) -> None:
    """The same dumps through the package's own reader (``DiagSocket``): its floor, no decoding."""
    import asyncio

    from xtcp_async.netlink import constants as c
    from xtcp_async.netlink.socket import DiagSocket

    async def run() -> None:
        diag = DiagSocket()
        try:
            for _ in range(count):
                for family in (socket.AF_INET, socket.AF_INET6):
                    async for _chunk in diag.dump(family, states=c.ALL_STATES_MASK, ext=c.EXT_ALL,
                                                  timeout_s=60.0):
                        pass
        finally:
            diag.close()

    asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.rawdump", description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=1, help="dumps to run (each: IPv4 then IPv6)")
    p.add_argument("--record", type=Path, help="save the first dump's chunks to this file")
    p.add_argument("-v", "--verbose", action="store_true", help="print bytes and recv calls per dump")
    p.add_argument("--bytecode", default="", help="hex of a filter program to attach (stdlib only)")
    p.add_argument("--impl", choices=["stdlib", "project"], default="stdlib",
                   help="stdlib: a bare recv loop (default); project: xtcp_async's DiagSocket")
    args = p.parse_args(argv)
    if args.impl == "project":
        _project_dumps(args.count)
        return 0
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    buf = bytearray(RECV_BUFFER_BYTES)
    seq = 0
    for i in range(args.count):
        keep: list[bytes] | None = [] if (args.record and i == 0) else None
        total = calls = 0
        for family in (socket.AF_INET, socket.AF_INET6):
            seq += 1
            nbytes, ncalls = dump(sock, family, seq, buf, keep, bytes.fromhex(args.bytecode))
            total += nbytes
            calls += ncalls
        if keep is not None:
            write_record(args.record, keep)
        if args.verbose:
            print(f"dump {i + 1}: {total} bytes in {calls} recv calls", file=sys.stderr)
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
