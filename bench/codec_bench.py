"""Decode and encode cost per socket, without a kernel: `python -m bench.codec_bench`.

Replicates the socket replies of a recorded dump (a shared xtcp2 fixture) to N sockets, packs
them into ~32 KiB chunks the way the kernel fills a dump's recvs, and times each stage on the
same data: fast decode, scalar decode (the reference walk), columnar protobuf encode, the
reference protobuf encoder and the jsonl encoder (the last two on a slice: they are slow).

Times are CPU seconds of this process (``time.process_time``), the minimum over repeats:
these machines are shared, and CPU time is far less disturbed by other tenants than wall time.
"""

from __future__ import annotations

import argparse
import gc
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xtcp_async.encode import jsonl, reference, wire
from xtcp_async.encode.framing import pack
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.batch import PollMeta
from xtcp_async.netlink.decode import decode_messages

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "xtcp2"
DEFAULT_PCAP = FIXTURES / "6_6_44" / "tcp_1000_sockets.pcap"
_NLMSG = struct.Struct("<IHHII")


def pcap_socket_replies(path: Path) -> list[bytes]:
    """Every SOCK_DIAG_BY_FAMILY reply (whole netlink message) of a LINKTYPE_NETLINK pcap."""
    raw = path.read_bytes()
    if raw[:4] != b"\xd4\xc3\xb2\xa1":
        raise SystemExit(f"{path}: not a little-endian classic pcap")
    out: list[bytes] = []
    off = 24  # global header
    while off + 16 <= len(raw):
        incl = struct.unpack_from("<I", raw, off + 8)[0]
        data = raw[off + 16 + 16:off + 16 + incl]  # record header, cooked netlink header
        off += 16 + incl
        m = 0
        while m + 16 <= len(data):
            ln, typ, flags, _seq, _pid = _NLMSG.unpack_from(data, m)
            if ln < 16:
                break
            if typ == c.SOCK_DIAG_BY_FAMILY and not flags & c.NLM_F_REQUEST:
                out.append(data[m:m + ln] + b"\0" * ((-ln) & 3))
            m += (ln + 3) & ~3
    return out


def widen_tcp_info(msg: bytes, length: int) -> bytes:
    """``msg`` with its INET_DIAG_INFO payload zero-extended to ``length`` bytes (a newer kernel)."""
    out = bytearray(msg[:16 + c.INET_DIAG_MSG_LEN])
    a = len(out)
    while a + 4 <= len(msg):
        a_len, a_type = struct.unpack_from("<HH", msg, a)
        if a_len < 4:
            break
        payload = msg[a + 4:a + a_len]
        if a_type & c.NLA_TYPE_MASK == c.INET_DIAG_INFO and len(payload) < length:
            payload = payload + bytes(length - len(payload))
        attr = struct.pack("<HH", 4 + len(payload), a_type) + payload
        out += attr + b"\0" * ((-len(attr)) & 3)
        a += (a_len + 3) & ~3
    struct.pack_into("<I", out, 0, len(out))
    return bytes(out)


def build_stream(msgs: list[bytes], sockets: int, chunk_bytes: int) -> list[bytes]:
    """``sockets`` replies (cycling through ``msgs``) in chunks of at most ``chunk_bytes``, then DONE."""
    chunks: list[bytes] = []
    cur: list[bytes] = []
    size = 0
    for i in range(sockets):
        m = msgs[i % len(msgs)]
        if size + len(m) > chunk_bytes and cur:
            chunks.append(b"".join(cur))
            cur, size = [], 0
        cur.append(m)
        size += len(m)
    cur.append(struct.pack("<IHHIIi", 20, c.NLMSG_DONE, c.NLM_F_MULTI, 1, 0, 0))
    chunks.append(b"".join(cur))
    return chunks


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(min CPU seconds, min wall seconds, last result) over ``repeat`` runs."""
    cpu, wall, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        gc.collect()
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        cpu = min(cpu, time.process_time() - c0)
        wall = min(wall, time.perf_counter() - w0)
    return cpu, wall, out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sockets", type=int, default=120_000)
    ap.add_argument("--pcap", type=Path, default=DEFAULT_PCAP, help="source of socket replies")
    ap.add_argument("--tcp-info-len", type=int, default=280,
                    help="zero-extend tcp_info to this size (280: 6.18's; 0 keeps the capture's)")
    ap.add_argument("--chunk-bytes", type=int, default=32 * 1024)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--slice-rows", type=int, default=8192,
                    help="also encode in slices of this many rows (bounds each call's loop stall)")
    ap.add_argument("--chunk-group", type=int, default=64,
                    help="also decode this many chunks per call (bounds each call's loop stall)")
    ap.add_argument("--slow-rows", type=int, default=10_000,
                    help="rows timed for the slow encoders (reference, jsonl) and the scalar decode")
    args = ap.parse_args(argv)

    msgs = pcap_socket_replies(args.pcap)
    if args.tcp_info_len:
        msgs = [widen_tcp_info(m, args.tcp_info_len) for m in msgs]
    chunks = build_stream(msgs, args.sockets, args.chunk_bytes)
    slow_chunks = build_stream(msgs, min(args.slow_rows, args.sockets), args.chunk_bytes)
    read_ns = list(range(1, len(chunks) + 1))
    total = sum(map(len, chunks))
    n = args.sockets
    print(f"source {args.pcap.name}: {len(msgs)} distinct replies; {n} sockets, {len(chunks)} chunks, "
          f"{total / 1e6:.1f} MB ({total / n:.0f} bytes/socket)")

    meta = PollMeta(poll_id=1, timestamp_ns=time.time_ns(), hostname="cache-42.pop-fra.example.net",
                    location="fra", daemon_version="0.1.0", record_counter_start=1)
    rows: list[tuple[str, int, float, float]] = []

    cpu, wall, res = timed(lambda: decode_messages(chunks, read_ns), args.repeat)
    batch = res.batch.with_meta(meta)
    assert batch.n == n, (batch.n, n, res.problems)
    rows.append(("decode (fast walk + gather)", n, cpu, wall))
    sn = min(args.slow_rows, n)
    cpu, wall, _ = timed(lambda: decode_messages(slow_chunks, fast=False), max(1, args.repeat // 2))
    rows.append(("decode (scalar walk, reference)", sn, cpu, wall))

    cpu, wall, enc = timed(lambda: wire.encode_rows(batch, list_entries=True), args.repeat)
    rows.append(("encode protobuf-list (wire)", n, cpu, wall))
    cpu, wall, _ = timed(lambda: pack(enc, max_bytes=1 << 20, max_rows=10_000, list_framing=True), args.repeat)
    rows.append(("pack into 1 MiB payloads", n, cpu, wall))
    longest: dict[str, float] = {}

    def sliced_encode() -> None:
        for s in range(0, n, args.slice_rows):
            t0 = time.perf_counter()
            wire.encode_rows(batch.slice(s, s + args.slice_rows), list_entries=True)
            longest["enc"] = max(longest.get("enc", 0.0), time.perf_counter() - t0)

    def grouped_decode() -> None:
        for s in range(0, len(chunks), args.chunk_group):
            t0 = time.perf_counter()
            decode_messages(chunks[s:s + args.chunk_group], read_ns[s:s + args.chunk_group])
            longest["dec"] = max(longest.get("dec", 0.0), time.perf_counter() - t0)

    cpu, wall, _ = timed(grouped_decode, args.repeat)
    rows.append((f"decode, {args.chunk_group} chunks per call", n, cpu, wall))
    cpu, wall, _ = timed(sliced_encode, args.repeat)
    rows.append((f"encode (wire), {args.slice_rows} rows per call", n, cpu, wall))
    small = batch.slice(0, sn)
    cpu, wall, _ = timed(lambda: reference.encode_rows(small, list_entries=True), max(1, args.repeat // 2))
    rows.append(("encode protobuf-list (reference)", sn, cpu, wall))
    cpu, wall, _ = timed(lambda: jsonl.encode_rows(small), max(1, args.repeat // 2))
    rows.append(("encode jsonl", sn, cpu, wall))

    print(f"protobuf-list: {len(enc.data) / n:.0f} bytes/record")
    print(f"{'stage':36} {'rows':>8} {'cpu µs/socket':>14} {'wall µs/socket':>15} {'cpu s @ N':>10}")
    for name, r, cpu, wall in rows:
        print(f"{name:36} {r:8d} {cpu / r * 1e6:14.2f} {wall / r * 1e6:15.2f} {cpu / r * n:10.3f}")
    print(f"longest single call: decode {longest['dec'] * 1e3:.1f} ms ({args.chunk_group} chunks), "
          f"encode {longest['enc'] * 1e3:.1f} ms ({args.slice_rows} rows) — wall, includes other tenants")
    dec, enc_fast = rows[0][2] / n, rows[2][2] / n
    print(f"decode + wire encode: {(dec + enc_fast) * 1e6:.2f} µs/socket, {(dec + enc_fast) * n:.3f} s CPU "
          f"for {n} sockets")


if __name__ == "__main__":
    main()
