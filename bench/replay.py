"""``python -m bench replay --sockets 1000000``: decode + encode cost over a recorded dump, at any size.

Holding 1M sockets is not possible here (fds, kernel memory), so the bench records one real dump of
sockets it holds (bench.rawdump --record, once, cached in bench/results/) and feeds its messages
round and round to the package's pipeline functions until ``--sockets`` rows went through:
``decode_messages`` on ~2 MiB of chunks at a time, then ``encode_rows`` + ``pack_rows`` in slices,
the way the service's decoder and encoder tasks call them. Nothing is joined up front, so memory is
the pipeline's own, not the input's.

The measured part runs in a child (``--worker``) started through bench.measure, so the figures are
that process's CPU and peak RSS; the child also reports decode and encode CPU separately.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.measure import Stat, run_once

RESULTS_DIR = Path(__file__).resolve().parent / "results"
_NLMSGHDR = struct.Struct("=IHHII")
SOCK_DIAG_BY_FAMILY = 20
# The kernel's dump chunks are at most ~32 KiB; regrouped messages keep that size.
CHUNK_BYTES = 32 * 1024


def data_messages(chunks: list[bytes]) -> list[bytes]:
    """Every socket message of a recorded dump (NLMSG_DONE and errors dropped), in order."""
    out: list[bytes] = []
    for chunk in chunks:
        off = 0
        while off + _NLMSGHDR.size <= len(chunk):
            length, msg_type, _, _, _ = _NLMSGHDR.unpack_from(chunk, off)
            if length < _NLMSGHDR.size:
                break
            if msg_type == SOCK_DIAG_BY_FAMILY:
                out.append(chunk[off:off + length])
            off += (length + 3) & ~3
    return out


def regroup(messages: list[bytes]) -> list[tuple[bytes, int]]:
    """Messages packed into kernel-sized chunks: (chunk bytes, sockets in it)."""
    chunks: list[tuple[bytes, int]] = []
    part: list[bytes] = []
    size = 0
    for msg in messages:
        padded = msg + b"\0" * ((-len(msg)) & 3)
        if part and size + len(padded) > CHUNK_BYTES:
            chunks.append((b"".join(part), len(part)))
            part, size = [], 0
        part.append(padded)
        size += len(padded)
    if part:
        chunks.append((b"".join(part), len(part)))
    return chunks


def decode_groups(chunks: list[tuple[bytes, int]], sockets: int, group_bytes: int) -> Iterator[list[bytes]]:
    """Cycle through ``chunks`` in groups of about ``group_bytes`` until ``sockets`` rows were handed out."""
    left = sockets
    group: list[bytes] = []
    size = 0
    while left > 0:
        for data, n in chunks:
            if n > left:
                # Cut the last chunk at a message boundary so exactly ``sockets`` rows go through.
                data = b"".join(data_messages([data])[:left])
                n = left
            group.append(data)
            size += len(data)
            left -= n
            if size >= group_bytes or left == 0:
                yield group
                group, size = [], 0
            if left == 0:
                return


def _worker(dump: Path, sockets: int, fmt: str) -> dict[str, Any]:
    """Decode + encode ``sockets`` rows from ``dump``; return CPU and wall seconds of each stage."""
    from bench.rawdump import read_record
    from xtcp_async.encode import encode_rows, pack_rows
    from xtcp_async.netlink.decode import decode_messages
    from xtcp_async.ops.heap import keep_freed_memory

    keep_freed_memory()  # as the service does at start-up

    # Batch the way the service's decoder and encoder tasks do; their constants may change shape or
    # move, and then today's values stand in.
    decode_bytes: int = 2 * 1024 * 1024
    step: int = 1024 if fmt == "jsonl" else 4096
    try:
        from xtcp_async import pipeline
    except ImportError:
        pass
    else:
        decode_bytes = int(getattr(pipeline, "DECODE_BYTES", decode_bytes))
        slice_rows: object = getattr(pipeline, "ENCODE_SLICE_ROWS", step)
        if isinstance(slice_rows, dict):
            step = int(slice_rows.get(fmt, step))
        elif isinstance(slice_rows, int):
            step = slice_rows

    chunks = regroup(data_messages(read_record(dump)))
    decode_cpu = encode_cpu = 0.0
    decode_wall = encode_wall = 0.0
    rows = payload_bytes = payloads = 0
    for group in decode_groups(chunks, sockets, decode_bytes):
        c0, w0 = time.process_time(), time.perf_counter()
        batch = decode_messages(group).batch
        c1, w1 = time.process_time(), time.perf_counter()
        parts = [encode_rows(batch.slice(s, s + step), fmt) for s in range(0, batch.n, step)]
        # Payloads packed across the parts, never joined first (as the service's encoder does).
        packed = pack_rows(parts, fmt, max_bytes=4 * 1024 * 1024, max_rows=10_000)
        c2, w2 = time.process_time(), time.perf_counter()
        decode_cpu += c1 - c0
        decode_wall += w1 - w0
        encode_cpu += c2 - c1
        encode_wall += w2 - w1
        rows += batch.n
        payloads += len(packed.payloads)
        payload_bytes += sum(len(p) for p in packed.payloads)
    return {"rows": rows, "format": fmt, "decode_cpu_s": decode_cpu, "decode_wall_s": decode_wall,
            "encode_cpu_s": encode_cpu, "encode_wall_s": encode_wall, "payloads": payloads,
            "payload_bytes": payload_bytes}


def _track_worker(dump: Path, sockets: int) -> dict[str, Any]:
    """--emit changed's state at ``sockets`` tracked sockets: bytes held and CPU per poll.

    Two polls over the same rows: the first tracks every socket (all new), the second finds
    none changed (the steady state of an idle host). Cookies are renumbered per row so that a
    replicated dump still has ``sockets`` distinct sockets.
    """
    import numpy as np

    from bench.rawdump import read_record
    from xtcp_async.netlink.decode import decode_messages
    from xtcp_async.stages.changes import ChangeTracker
    from xtcp_async.stages.spec import DEFAULT_EMIT_FIELDS

    chunks = regroup(data_messages(read_record(dump)))
    tracker = ChangeTracker(DEFAULT_EMIT_FIELDS)
    polls = []
    for _ in range(2):
        cpu = 0.0
        sent = 0
        row = 0
        for group in decode_groups(chunks, sockets, 2 * 1024 * 1024):
            batch = decode_messages(group).batch
            batch.columns["inet_diag_msg_socket_cookie"] = np.arange(row, row + batch.n, dtype=np.uint64)
            row += batch.n
            c0 = time.process_time()
            sent += tracker.on_batch(batch).n
            cpu += time.process_time() - c0
        c0 = time.process_time()
        tracker.on_poll_end(complete=True)
        cpu += time.process_time() - c0
        polls.append({"track_cpu_s": cpu, "rows_sent": sent})
    return {"rows": sockets, "tracked": tracker.tracked, "state_bytes": tracker.nbytes(),
            "bytes_per_socket": tracker.nbytes() / max(1, tracker.tracked), "polls": polls}


def record_dump(path: Path, sockets: int) -> None:
    """Hold ``sockets`` sockets and save one raw dump of everything on the machine to ``path``."""
    from bench.loadgen import LoadGen

    print(f"recording a dump of {sockets} held sockets to {path} …", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with LoadGen(max(1, sockets // 2)):
        subprocess.run([sys.executable, "-m", "bench.rawdump", "--record", str(path)], check=True,
                       env=_env())


def _env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench replay", description=__doc__.split("\n")[0])
    p.add_argument("--sockets", type=int, default=1_000_000, help="rows to push through (default 1M)")
    p.add_argument("--dump", type=Path, help="a dump recorded by bench.rawdump --record, recorded "
                   "first if missing (default: bench/results/dump-<record-sockets>.bin)")
    p.add_argument("--record-sockets", type=int, default=20_000,
                   help="sockets to hold while recording the default dump (default 20000)")
    p.add_argument("--formats", default="protobuf-list,jsonl")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "replay.json")
    p.add_argument("--track", action="store_true",
                   help="measure --emit changed's tracker instead (bytes per tracked socket, CPU per poll)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--format", default="protobuf-list", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    dump: Path = args.dump or RESULTS_DIR / f"dump-{args.record_sockets}.bin"
    if args.worker:
        result = _track_worker(dump, args.sockets) if args.track else _worker(dump, args.sockets, args.format)
        print(json.dumps(result))
        return 0
    if not dump.exists():
        record_dump(dump, args.record_sockets)
    if args.track:
        return _track_main(dump, args)
    doc: dict[str, Any] = {"dump": str(dump), "sockets": args.sockets, "formats": {}}
    print(f"replaying {dump} to {args.sockets} sockets, {args.repeat} runs per format (min / median)")
    for fmt in args.formats.split(","):
        runs = []
        for _ in range(args.repeat):
            with tempfile.TemporaryFile() as report:
                run = run_once([sys.executable, "-m", "bench.replay", "--worker", "--dump", str(dump),
                                "--sockets", str(args.sockets), "--format", fmt],
                               stdout=report.fileno(), env=_env())
                report.seek(0)
                child = json.loads(report.read())
            runs.append({"cpu_s": run.cpu_s, "wall_s": run.wall_s, "max_rss_bytes": run.max_rss_bytes,
                         **child})
        stats = {k: Stat.of([r[k] for r in runs]) for k in
                 ("decode_cpu_s", "encode_cpu_s", "cpu_s", "max_rss_bytes")}
        per_socket = (stats["decode_cpu_s"].min + stats["encode_cpu_s"].min) / args.sockets * 1e6
        print(f"  {fmt:14} decode {stats['decode_cpu_s'].min:.2f} / {stats['decode_cpu_s'].median:.2f} s"
              f"  encode {stats['encode_cpu_s'].min:.2f} / {stats['encode_cpu_s'].median:.2f} s"
              f"  ({per_socket:.2f} µs/socket)  process CPU {stats['cpu_s'].min:.2f} s"
              f"  peak RSS {stats['max_rss_bytes'].min / 2**20:.0f} MiB")
        doc["formats"][fmt] = {"runs": runs, **{k: {"min": v.min, "median": v.median}
                                                 for k, v in stats.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}")
    return 0


def _track_main(dump: Path, args: argparse.Namespace) -> int:
    print(f"tracking {args.sockets} sockets replayed from {dump}, {args.repeat} runs (min / median)")
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryFile() as report:
            run = run_once([sys.executable, "-m", "bench.replay", "--worker", "--track", "--dump", str(dump),
                            "--sockets", str(args.sockets)], stdout=report.fileno(), env=_env())
            report.seek(0)
            child = json.loads(report.read())
        runs.append({"max_rss_bytes": run.max_rss_bytes, **child})
    first = Stat.of([r["polls"][0]["track_cpu_s"] for r in runs])
    steady = Stat.of([r["polls"][1]["track_cpu_s"] for r in runs])
    rss = Stat.of([float(r["max_rss_bytes"]) for r in runs])
    per = runs[0]["bytes_per_socket"]
    print(f"  state {runs[0]['state_bytes'] / 2**20:.1f} MiB = {per:.1f} bytes per tracked socket; "
          f"tracking CPU: first poll {first.min:.3f} / {first.median:.3f} s, unchanged poll "
          f"{steady.min:.3f} / {steady.median:.3f} s; process peak RSS {rss.min / 2**20:.0f} MiB")
    out = args.out.with_name(f"track-{args.sockets}.json") if args.out == RESULTS_DIR / "replay.json" else args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"dump": str(dump), "sockets": args.sockets, "runs": runs}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
