"""``python -m bench health``: what issue 12's features cost per poll, and `top`'s CPU per refresh.

For each size the same loopback sockets are held (bench.loadgen) while these run in turn, each as
``k + 1`` and 1 polls/refreshes, so the difference over k is the steady-state cost (start-up left out):

  a.  ``ss -tin`` to /dev/null                                         the C reference
  t.  ``xtcp-async top --json``                                          CPU per refresh
  s0. the service to ``null://`` with no metrics listener             the baseline poll
  s1. s0 plus the metrics listener (the TCP-health summary every poll)
  s2. s1 plus --asn-db, --prefix-len 24,48 and --aggregate --aggregate-by asn,prefix,port,state
      to a ``null://?records=both`` sink

CPU is the child's user + sys (wait4); min and median of ``--repeat`` runs. The machine is shared:
compare rows of one run only.

``--inproc`` instead times each stage in this process (CPU, ``time.process_time``, min and median
of ``--repeat`` runs) on the sockets the host holds: one top refresh's dump + decode + columns, the
poll summary (deltas), the metrics fold, the aggregate records, their protobuf encoding, and top's
view + text. Less exposed to the neighbours than subtracting whole runs.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.loadgen import LoadGen
from bench.measure import Differential, measure

RESULTS = Path(__file__).resolve().parent / "results" / "health.json"


def _cmd() -> list[str]:
    exe = Path(sys.executable).with_name("xtcp-async")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "xtcp_async"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_table(path: Path, prefixes: int) -> Path:
    """A pfx2as table of ``prefixes`` random IPv4/IPv6 prefixes plus loopback (so lookups hit)."""
    rnd = random.Random(12)
    lines = ["127.0.0.0\t8\t64500\n", "127.0.0.0\t24\t64501\n", "::1\t128\t64510\n"]
    for i in range(prefixes):
        if i % 5:
            net = ipaddress.ip_network((rnd.getrandbits(32), rnd.randint(8, 24)), strict=False)
        else:
            net = ipaddress.ip_network((rnd.getrandbits(128), rnd.randint(19, 48)), strict=False)
        lines.append(f"{net.network_address}\t{net.prefixlen}\t{rnd.randint(1, 400_000)}\n")
    path.write_text("".join(lines))
    return path


def _per_poll(argv: list[str], k: int, repeat: int) -> dict[str, Any]:
    one = measure([*argv, "--count", "1"], repeat)
    many = measure([*argv, "--count", str(k + 1)], repeat)
    d = Differential.of(k, one, many)
    return {"cpu_s": {"min": d.cpu_s.min, "median": d.cpu_s.median},
            "count_1_cpu_s": {"min": one.cpu_s.min, "median": one.cpu_s.median},
            "max_rss_mib": many.max_rss_bytes.median / 2**20}


def run_size(sockets: int, k: int, repeat: int, workdir: Path, table: Path) -> dict[str, Any]:
    cmd = _cmd()
    interval = max(1.0, round(sockets * 15e-6, 1))
    service = [*cmd, "--sink", "null://?format=protobuf-list", "--interval", str(interval),
               "--poll-timeout", str(round(interval * 0.9, 3)), "--log-level", "warning"]
    rows: dict[str, Any] = {}
    with LoadGen(max(1, sockets // 2)) as lg:
        print(f"== {lg.sockets} sockets", flush=True)
        ss = measure(["ss", "-tin"], repeat)
        rows["a_ss"] = {"cpu_s": {"min": ss.cpu_s.min, "median": ss.cpu_s.median}}
        print("   t: top", flush=True)
        rows["t_top"] = _per_poll([*cmd, "top", "--json", "--interval", "0.01"], k, repeat)
        print("   s0, s1, s2: the service", flush=True)
        rows["s0_service"] = _per_poll([*service, "--metrics-listen", ""], k, repeat)
        rows["s1_metrics"] = _per_poll([*service, "--metrics-listen", f"127.0.0.1:{_free_port()}"], k, repeat)
        rows["s2_aggregate"] = _per_poll(
            [*service[:2], "null://?format=protobuf-list&records=both", *service[3:],
             "--metrics-listen", f"127.0.0.1:{_free_port()}", "--asn-db", str(table), "--prefix-len", "24,48",
             "--aggregate", "--aggregate-by", "asn,prefix,port,state"], k, repeat)
        held = lg.sockets
    return {"sockets": held, "k": k, "repeat": repeat, "interval_s": interval, "rows": rows}


def print_table(doc: dict[str, Any]) -> None:
    print("\n| sockets | `ss -tin` | top, per refresh | service | + metrics | + ASN, prefix, aggregates |")
    print("|---|---|---|---|---|---|")
    for s in doc["sizes"]:
        r = s["rows"]

        def cell(key: str, r: dict[str, Any] = r) -> str:
            c = r[key]["cpu_s"]
            return f"{c['min']:.3f} / {c['median']:.3f}"

        print(f"| {s['sockets']:,} | {cell('a_ss')} | {cell('t_top')} | {cell('s0_service')} | "
              f"{cell('s1_metrics')} | {cell('s2_aggregate')} |")
    print("\nCPU seconds per poll (per refresh for top), min / median; top's whole `--once` run "
          "(start-up included): " + ", ".join(f"{s['sockets']:,}: {s['rows']['t_top']['count_1_cpu_s']['median']:.2f} s"
                                              for s in doc["sizes"]))


def inproc(sockets: int, repeat: int, table: Path) -> dict[str, Any]:
    """Each stage's CPU seconds on the host's sockets while ``sockets`` loopback sockets are held."""
    import asyncio
    import statistics
    import time

    from xtcp_async.aggregate.deltas import DeltaState
    from xtcp_async.aggregate.poll import records_of, summarize
    from xtcp_async.aggregate.records import AggregateSettings, encode_aggregates
    from xtcp_async.enrich.stage import Enricher
    from xtcp_async.netlink import constants as c
    from xtcp_async.netlink.batch import PollMeta
    from xtcp_async.netlink.decode import decode_messages
    from xtcp_async.netlink.socket import DiagSocket
    from xtcp_async.ops.tcp_health import TcpHealth
    from xtcp_async.top.cli import snapshot
    from xtcp_async.top.render import render
    from xtcp_async.top.view import top_view

    t0 = time.process_time()
    enricher = Enricher.load(str(table), (24, 48))
    load_s = time.process_time() - t0
    times: dict[str, list[float]] = {}

    def timed(name: str, fn: Any) -> Any:
        t = time.process_time()
        out = fn()
        times.setdefault(name, []).append(time.process_time() - t)
        return out

    with LoadGen(max(1, sockets // 2)) as lg:
        sock = DiagSocket()
        sock.open()
        held = lg.sockets
        seen = 0
        for _ in range(repeat):
            cols = timed("dump_decode_enrich_columns", lambda: asyncio.run(
                snapshot(sock, (c.AF_INET, c.AF_INET6), c.ALL_STATES_MASK, 30.0, enricher)))
            seen = cols.n
            summary, state = timed("summary_deltas", lambda cols=cols: summarize(cols, DeltaState.empty()))
            summary, _ = timed("summary_deltas", lambda cols=cols, state=state: summarize(cols, state))
            timed("metrics_fold", lambda summary=summary: TcpHealth().observe(summary))
            recs = timed("aggregate_records", lambda summary=summary: records_of(
                summary, PollMeta(), AggregateSettings(("asn", "prefix", "port", "state"), 1000)))
            timed("aggregate_encode", lambda recs=recs: encode_aggregates(recs, "protobuf-list"))
            timed("top_view_render", lambda summary=summary: render(top_view(summary, with_asn=True)))
        # Enrichment alone, on one whole decoded dump (the service enriches ~1 MiB batches; same work).
        async def whole() -> list[bytes]:
            out = []
            for fam in (c.AF_INET, c.AF_INET6):
                async for ch in sock.dump(fam, states=c.ALL_STATES_MASK, ext=c.EXT_ALL, timeout_s=30.0):
                    out.append(ch.data)
            return out

        batch = decode_messages(asyncio.run(whole())).batch
        for _ in range(repeat):
            timed("enrich_asn_prefix", lambda b=batch: enricher(b))
        del batch
        sock.close()
        ss = measure(["ss", "-tin"], repeat)
        top = measure([*_cmd(), "top", "--once", "--json", "--asn-db", str(table)], repeat)
    return {"held": held, "sockets_seen": seen, "asn_db_load_s": load_s,
            "ss_cpu_s": {"min": ss.cpu_s.min, "median": ss.cpu_s.median},
            "top_once_process": {"cpu_s": {"min": top.cpu_s.min, "median": top.cpu_s.median},
                                 "max_rss_mib": top.max_rss_bytes.median / 2**20},
            "stages_cpu_s": {k: {"min": min(v), "median": statistics.median(v)} for k, v in times.items()}}


def table_load(prefixes: int, repeat: int) -> int:
    """CPU of loading a generated pfx2as table, plain and gzipped (start-up and SIGHUP cost)."""
    import gzip
    import time

    from xtcp_async.enrich.asndb import load_asn_db

    with tempfile.TemporaryDirectory(prefix="xtcp-bench-table-") as tmp:
        plain = write_table(Path(tmp) / "pfx2as.txt", prefixes)
        gz = Path(tmp) / "pfx2as.txt.gz"
        gz.write_bytes(gzip.compress(plain.read_bytes()))
        for path in (plain, gz):
            runs = []
            for _ in range(repeat):
                t = time.process_time()
                table = load_asn_db(path)
                runs.append(time.process_time() - t)
            print(f"{path.name}: {prefixes:,} prefixes → {len(table.v4):,} IPv4 + {len(table.v6):,} IPv6 ranges, "
                  f"CPU min {min(runs):.2f} s, max {max(runs):.2f} s over {repeat}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench health", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="120000", help="socket counts, comma-separated (default 120000)")
    p.add_argument("--repeat", type=int, default=3, help="runs of every command (default 3)")
    p.add_argument("--polls", type=int, default=3, help="k: k + 1 polls against 1 (default 3)")
    p.add_argument("--prefixes", type=int, default=100_000, help="prefixes in the generated pfx2as table")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--inproc", action="store_true", help="time each stage in-process (see above)")
    p.add_argument("--table-load", action="store_true",
                   help="only time loading a --prefixes table (pfx2as text and gzip), no sockets")
    args = p.parse_args(argv)
    if args.table_load:
        return table_load(args.prefixes, args.repeat)
    if args.inproc:
        with tempfile.TemporaryDirectory(prefix="xtcp-bench-health-") as tmp:
            table = write_table(Path(tmp) / "pfx2as.txt", args.prefixes)
            docs = [inproc(int(x), args.repeat, table) for x in args.sizes.split(",")]
        out = args.out.with_name("health-inproc.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(docs, indent=1))
        print(json.dumps(docs, indent=1))
        return 0
    doc: dict[str, Any] = {"prefixes": args.prefixes, "sizes": []}
    with tempfile.TemporaryDirectory(prefix="xtcp-bench-health-") as tmp:
        table = write_table(Path(tmp) / "pfx2as.txt", args.prefixes)
        for size in (int(x) for x in args.sizes.split(",")):
            doc["sizes"].append(run_size(size, args.polls, args.repeat, Path(tmp), table))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(doc, indent=1))
    print_table(doc)
    print(f"\nwrote {args.out}")
    return 0
