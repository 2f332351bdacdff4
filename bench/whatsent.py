"""``python -m bench whatsent --sockets 120000``: what the kernel filter and change-only mode save.

The load generator holds the sockets over 10 worker pairs, each with its own 127.0.0.x source
address, so ``src 127.77.11.2 or dst 127.77.11.2`` keeps one pair: ~10% of the held sockets (the
machine's other sockets come on top; the table prints the share really kept). ``--busy``
(default 5%) of the connections send a byte every 0.25 s, so that share of sockets changes in
every poll interval. Then, each as the main bench does it (k + 1 polls minus 1 poll, over k):

  f0 / f1   the raw dump floor (bench.rawdump), without / with the compiled filter attached
  s0 / s1   xtcp-async → null://protobuf-list, without / with ``--filter``
  e0 / e1   xtcp-async ``--emit all`` / ``--emit changed``: CPU, rows and bytes per poll

f1 < f0 shows the kernel's own work drop (it skips filtered sockets before building their
attributes), not only ours. Rows per poll are the service's last poll; bytes per poll are
``bytes_encoded`` of k + 1 polls minus 1 poll, over k.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.loadgen import LoadGen
from bench.measure import Differential, Stat, measure

RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: The load generator's connectors bind to 127.77.11.x: other benches on this machine use 127.0.0.x.
SOURCE_NET = "127.77.11"
FILTER = f"src {SOURCE_NET}.2 or dst {SOURCE_NET}.2"
PAIRS = 10


def _env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def _floor(bytecode: str, polls: int, repeat: int) -> dict[str, Any]:
    base = [sys.executable, "-m", "bench.rawdump", *(["--bytecode", bytecode] if bytecode else [])]
    one = measure([*base, "--count", "1"], repeat, env=_env())
    many = measure([*base, "--count", str(polls + 1)], repeat, env=_env())
    d = Differential.of(polls, one, many)
    return {"cpu_s": {"min": d.cpu_s.min, "median": d.cpu_s.median}, "k": polls}


def _service(args: list[str], polls: int, repeat: int, interval: float, workdir: Path) -> dict[str, Any]:
    from bench.__main__ import _stats_runs, xtcp_async_cmd

    cmd = xtcp_async_cmd()
    assert cmd is not None
    argv = [*cmd, "--sink", "null://?format=protobuf-list", "--interval", str(interval),
            "--poll-timeout", str(round(interval * 0.9, 3)), "--metrics-listen", "", "--log-level", "warning",
            *args]
    stats = workdir / "stats.json"
    one, one_reports = _stats_runs(argv, 1, repeat, stats, None)
    many, reports = _stats_runs(argv, polls + 1, repeat, stats, None)
    d = Differential.of(polls, one, many)
    per_poll_bytes = [(int(m.get("bytes_encoded", 0)) - int(o.get("bytes_encoded", 0))) / polls
                      for o, m in zip(sorted(one_reports, key=_bytes), sorted(reports, key=_bytes), strict=True)]
    rows = [int(r.get("last_poll_sockets", 0)) for r in reports if r]
    failed = sum(int(r.get("polls_failed") or 0) for r in reports if r)
    return {"cpu_s": {"min": d.cpu_s.min, "median": d.cpu_s.median}, "k": polls,
            "rows_per_poll": {"min": min(rows), "median": Stat.of(rows).median} if rows else None,
            "bytes_per_poll": {"min": min(per_poll_bytes), "median": Stat.of(per_poll_bytes).median},
            "sockets_read_first_poll": max(int(r.get("sockets", 0)) for r in one_reports if r),
            "polls_failed": failed}


def _bytes(report: dict[str, Any]) -> int:
    return int(report.get("bytes_encoded", 0))


def run(sockets: int, polls: int, repeat: int, busy: float, interval: float | None) -> dict[str, Any]:
    from xtcp_async.netlink.filter_ast import parse
    from xtcp_async.netlink.filter_bytecode import compile_filter

    bytecode = compile_filter(parse(FILTER)).hex()
    connections = max(PAIRS, sockets // 2)
    per_worker = math.ceil(connections / PAIRS)
    # Room for ~20 µs of service CPU per socket and poll on a shared machine (as the main bench).
    interval = interval or max(1.0, round(sockets * 20e-6, 1))
    out: dict[str, Any] = {"sockets": 2 * connections, "filter": FILTER, "busy_share": busy,
                           "interval_s": interval, "rows": {}}
    print(f"holding {2 * connections} sockets ({PAIRS} worker pairs, {busy:.0%} busy) …", flush=True)
    with LoadGen(connections, per_worker=per_worker, busy_share=busy, source_net=SOURCE_NET) as lg, \
            tempfile.TemporaryDirectory(prefix="xtcp-whatsent-") as tmp:
        print(f"  ready in {lg.setup_s:.1f} s", flush=True)
        steps: list[tuple[str, str, Any]] = [
            ("f0", "raw dump, no filter", lambda: _floor("", polls * 4, repeat)),
            ("f1", f"raw dump, filter '{FILTER}'", lambda: _floor(bytecode, polls * 4, repeat)),
            ("s0", "xtcp-async, every socket", lambda: _service([], polls, repeat, interval, Path(tmp))),
            ("s1", "xtcp-async --filter", lambda: _service(["--filter", FILTER], polls, repeat, interval,
                                                           Path(tmp))),
            ("e0", "xtcp-async --emit all", lambda: _service(["--emit", "all"], polls, repeat, interval,
                                                             Path(tmp))),
            ("e1", "xtcp-async --emit changed", lambda: _service(["--emit", "changed"], polls, repeat,
                                                                 interval, Path(tmp))),
        ]
        for key, label, fn in steps:
            print(f"  {key}: {label} …", flush=True)
            out["rows"][key] = {"label": label, **fn()}
    return out


def print_table(doc: dict[str, Any]) -> None:
    print(f"\n{doc['sockets']} held sockets; per poll, min / median")
    print(f"{'':42} {'CPU s':>15} {'rows':>15} {'bytes':>23}")
    for key, row in doc["rows"].items():
        cpu = f"{row['cpu_s']['min']:.3f} / {row['cpu_s']['median']:.3f}"
        rows = f"{row['rows_per_poll']['min']} / {row['rows_per_poll']['median']:.0f}" if row.get(
            "rows_per_poll") else "-"
        nbytes = (f"{row['bytes_per_poll']['min']:.0f} / {row['bytes_per_poll']['median']:.0f}"
                  if row.get("bytes_per_poll") else "-")
        print(f"{key} {row['label']:39} {cpu:>15} {rows:>15} {nbytes:>23}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench whatsent", description=__doc__.split("\n")[0])
    p.add_argument("--sockets", type=int, default=120_000)
    p.add_argument("--polls", type=int, default=5, help="k for the service rows (floors: 4k)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--busy", type=float, default=0.05, help="share of connections sending each 0.25 s")
    p.add_argument("--interval", type=float, default=None)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "whatsent.json")
    args = p.parse_args(argv)
    doc = run(args.sockets, args.polls, args.repeat, args.busy, args.interval)
    print_table(doc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
