"""Record this kernel's sock_diag dump replies, and what ss printed at the same moment, for offline tests.

Run as root from the repository root:

    .venv/bin/python tests/data/record_capture.py            # writes tests/data/kernel_6_18_*

It makes a network namespace, runs the live tests' traffic program in it (IPv4/IPv6/v4-mapped
connections with traffic, listeners, half-closed, TIME-WAIT, a uid-65534 socket, a bound-only
socket), then, inside the namespace, dumps AF_INET and AF_INET6 with every extension through
``xtcp_async.netlink.socket.DiagSocket`` and runs ``ss -tainOHem`` right after. Outputs:

* ``<name>_dump.bin``: every chunk the dump yielded, each as a little-endian u32 length + the bytes
  (the AF_INET dump's chunks, then AF_INET6's; each dump ends with its NLMSG_DONE);
* ``<name>_ss.txt``: the ss output, after one ``#`` line saying how it was made.

``tests/unit/netlink/test_capture_6_18.py`` decodes the first and compares it with the second.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import socket
import struct
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

LEN = struct.Struct("<I")


def read_chunks(path: Path) -> list[bytes]:
    """The chunks of a ``*_dump.bin`` file, in order."""
    data = path.read_bytes()
    chunks, off = [], 0
    while off < len(data):
        (n,) = LEN.unpack_from(data, off)
        off += LEN.size
        if off + n > len(data):
            raise ValueError(f"{path}: chunk of {n} bytes at {off} runs past the end ({len(data)})")
        chunks.append(data[off:off + n])
        off += n
    return chunks


async def _dump_all() -> list[bytes]:
    from xtcp_async.netlink import constants as c
    from xtcp_async.netlink.socket import DiagSocket

    sock = DiagSocket()
    chunks: list[bytes] = []
    try:
        for family in (socket.AF_INET, socket.AF_INET6):
            async for chunk in sock.dump(family, states=c.ALL_STATES_MASK, ext=c.EXT_ALL, timeout_s=5.0):
                chunks.append(chunk.data)
    finally:
        sock.close()
    return chunks


def inside(out_dir: Path, name: str) -> None:
    """In the namespace: dump, then ss right after, then write both files."""
    chunks = asyncio.run(_dump_all())
    ss_text = subprocess.run(["ss", "-tainOHem"], capture_output=True, text=True, check=True).stdout
    ss_version = subprocess.run(["ss", "-V"], capture_output=True, text=True, check=False).stdout.strip()
    (out_dir / f"{name}_dump.bin").write_bytes(b"".join(LEN.pack(len(ch)) + ch for ch in chunks))
    header = f"# ss -tainOHem ({ss_version}), kernel {platform.release()}, right after the dump in {name}_dump.bin\n"
    (out_dir / f"{name}_ss.txt").write_text(header + ss_text)
    print(f"{len(chunks)} chunks, {sum(map(len, chunks))} bytes; {len(ss_text.splitlines())} ss lines")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--name", default="kernel_6_18")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))  # run as a script: make `tests` and `xtcp_async` importable
    if args.inside:
        inside(args.out_dir, args.name)
        return
    from tests.integration.live.harness import netns, netns_unavailable_reason, start_traffic

    reason = netns_unavailable_reason()
    if reason:
        sys.exit(f"cannot record: {reason}")
    if not platform.release().startswith("6.18") and args.name == "kernel_6_18":
        print(f"warning: this kernel is {platform.release()}; pass --name", file=sys.stderr)
    with netns() as ns:
        traffic = start_traffic(ns)
        try:
            print(ns.run([sys.executable, Path(__file__).resolve(), "--inside", "--out-dir",
                          args.out_dir.resolve(), "--name", args.name]), end="")
        finally:
            traffic.stop()


if __name__ == "__main__":
    main()
