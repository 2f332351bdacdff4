"""``make bench``: what one poll costs at 20k/60k/120k sockets, next to ``ss -tin`` and the raw dump.

For each size the same sockets are held (bench.loadgen) while these run one after another:

  a. ``ss -tin`` to /dev/null                              the C reference
  b. the raw dump, no decoding: a bare recv loop (stdlib) and the package's DiagSocket   the floor
  c. the service polling to ``null://?format=protobuf-list``
  d. the service polling to ``file://…?format=jsonl``

Children that start an interpreter (b, c, d) run ``k + 1`` polls and 1 poll, and the difference
divided by k is the steady-state cost per poll; the 1-poll run is the start-up cost, reported on its
own line. CPU is the child's user + sys from the OS (``wait4``), peak RSS its ``ru_maxrss``. For the
service, "wall" is its own report of how long its last poll took (the run length is mostly the
interval), and "stall" the longest event-loop stall it saw while a dump was being read
(``--stats-json``: max_dump_stall_s; start-up stalls are left out, they are in max_loop_stall_s),
with the share of it the process spent on CPU (max_dump_stall_cpu_share): far below 100%, the
stall was the OS running something else on this shared machine, not our code holding the loop.
Commands run in ``--repeat`` rounds (ss, raw dump, service protobuf-list, service jsonl; then ss again
before the next round), see bench/rounds.py: the table shows min and median over the rounds, and
the ratios are the median of the per-round ratios with their range. The machines are shared and
noisy, so only ratios measured in one run mean anything.

``python -m bench replay --sockets 1000000`` measures decode + encode over a recorded dump
replicated to that many sockets (see bench.replay); ``python -m bench whatsent`` what --filter and
--emit changed save (see bench.whatsent).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.loadgen import LoadGen
from bench.measure import ChildFailed, Differential, Stat, Summary, measure, rss_is_exact, run_once
from bench.rounds import Round, merge_stat, ratios

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_SIZES = (20_000, 60_000, 120_000)
QUICK_SIZE = 2_000
PY = sys.executable


def xtcp_async_cmd() -> list[str] | None:
    """The service's command line, or None while the CLI does not exist yet."""
    exe = Path(PY).with_name("xtcp-async")
    if exe.exists():
        return [str(exe)]
    try:
        import xtcp_async.cli  # noqa: F401
    except ImportError:
        return None
    return [PY, "-m", "xtcp_async"]


def service_flags(cmd: list[str]) -> set[str]:
    """The long flags ``--help`` lists, so rows that need a missing flag say so instead of failing."""
    out = subprocess.run([*cmd, "--help"], capture_output=True, text=True, check=False).stdout
    return {w.strip("[],") for w in out.split() if w.startswith(("--", "[--"))}


def machine_facts() -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    ss_version = subprocess.run(["ss", "-V"], capture_output=True, text=True, check=False).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            check=False, cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "ss": ss_version,
        "git_commit": commit,
        "mem_total_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@dataclass
class Row:
    """One line of the table: a command's cost per poll, or why it has no numbers."""

    key: str
    label: str
    cpu_s: Stat | None = None
    wall_s: Stat | None = None
    rss_bytes: Stat | None = None
    status: str = "ok"
    extra: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "status": self.status}
        for name in ("cpu_s", "wall_s", "rss_bytes"):
            value = getattr(self, name)
            out[name] = None if value is None else {"min": value.min, "median": value.median}
        out.update(self.extra)
        out["detail"] = self.detail
        return out


@dataclass(frozen=True)
class Options:
    repeat: int
    polls: int
    #: None: scaled to the size (see _schedule).
    interval_s: float | None
    jsonl_polls: int
    jsonl_repeat: int


# Service CPU per socket and poll that the automatic interval leaves room for, with the machine
# shared: protobuf-list measured ~9 µs at 20k, jsonl ~41 µs. A poll that overruns its
# --poll-timeout is abandoned, and its sockets would silently drop out of the figures.
_ROOM_US_PER_SOCKET = {"service_null_pblist": 20.0, "service_file_jsonl": 80.0}
#: The jsonl row's sink buffer: a whole poll (see _service_rows).
JSONL_BUFFER_BYTES = 1 << 30


def _schedule(key: str, sockets: int, opts: Options) -> tuple[float, float]:
    """(--interval, --poll-timeout) for one service row: fixed if given, else scaled to the size."""
    interval = opts.interval_s
    if interval is None:
        interval = max(1.0, round(sockets * _ROOM_US_PER_SOCKET[key] * 1e-6, 1))
    # The service insists the timeout is below the interval (a poll must end before the next one).
    return interval, round(interval * 0.9, 3)


def _ss_row(opts: Options) -> Row:
    s = measure(["ss", "-tin"], opts.repeat)
    return Row("ss", "a  ss -tin > /dev/null", s.cpu_s, s.wall_s, s.max_rss_bytes, detail=s.to_json())


def _differential_row(key: str, label: str, argv: list[str], opts: Options, polls: int,
                      env: dict[str, str] | None = None) -> tuple[Row, Summary]:
    one = measure([*argv, "--count", "1"], opts.repeat, env=env)
    many = measure([*argv, "--count", str(polls + 1)], opts.repeat, env=env)
    d = Differential.of(polls, one, many)
    row = Row(key, label, d.cpu_s, d.wall_s, many.max_rss_bytes, detail=d.to_json())
    if jitter := _jitter_problem(d):
        row.status = f"suspect: {jitter}"
    return row, one


def _jitter_problem(d: Differential) -> str | None:
    """Why a per-poll figure cannot be trusted: k polls added less CPU than start-up varies by."""
    if d.cpu_s.min > 0 and d.cpu_s.median > 0:
        return None
    return f"{d.k} polls added no measurable CPU over 1 (start-up jitter); raise --polls"


# A raw dump costs ~1.4 µs per socket here, while an interpreter's start-up varies by tens of ms
# from run to run. k extra dumps must add well over that jitter, or (k+1 − 1)/k measures noise:
# at 2k sockets and k = 2 it once came out negative. So k grows until they add ≥ this much CPU.
_FLOOR_US_PER_SOCKET = 1.4
_FLOOR_MIN_EXTRA_CPU_S = 0.5


def _floor_polls(sockets: int, opts: Options) -> int:
    per_dump = max(sockets, 1) * _FLOOR_US_PER_SOCKET * 1e-6
    return max(opts.polls, math.ceil(_FLOOR_MIN_EXTRA_CPU_S / per_dump))


def _floor_rows(opts: Options, sockets: int) -> list[Row]:
    base = [PY, "-m", "bench.rawdump"]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                      env.get("PYTHONPATH")]))
    polls = _floor_polls(sockets, opts)
    print(f"      {polls} + 1 dumps vs 1", flush=True)
    rows = [_differential_row("floor_stdlib", "b  raw dump, bare recv loop", base, opts, polls, env)[0]]
    try:
        import xtcp_async.netlink.socket  # noqa: F401
    except ImportError:
        rows.append(Row("floor_project", "b' raw dump, xtcp_async DiagSocket",
                        status="TODO: xtcp_async.netlink.socket not there yet"))
    else:
        rows.append(_differential_row("floor_project", "b' raw dump, xtcp_async DiagSocket",
                                      [*base, "--impl", "project"], opts, polls, env)[0])
    return rows


def _stats_runs(argv: list[str], count: int, repeat: int, stats_path: Path,
                cleanup: Path | None) -> tuple[Summary, list[dict[str, Any]]]:
    """Run the service ``repeat`` times, collecting its --stats-json report after each run."""
    runs = []
    reports: list[dict[str, Any]] = []
    full = [*argv, "--count", str(count), "--stats-json", str(stats_path)]
    for _ in range(repeat):
        stats_path.unlink(missing_ok=True)
        runs.append(run_once(full, stderr=subprocess.DEVNULL))
        reports.append(json.loads(stats_path.read_text()) if stats_path.exists() else {})
        if cleanup is not None:
            cleanup.unlink(missing_ok=True)
    summary = Summary(full, runs, Stat.of([r.cpu_s for r in runs]), Stat.of([r.wall_s for r in runs]),
                      Stat.of([float(r.max_rss_bytes) for r in runs]))
    return summary, reports


def _service_rows(opts: Options, workdir: Path, expected_sockets: int) -> tuple[list[Row], Row | None]:
    """Rows c and d, plus the start-up line (from c's 1-poll runs)."""
    labels = {"service_null_pblist": "c  xtcp-async → null, protobuf-list",
              "service_file_jsonl": "d  xtcp-async → file, jsonl"}
    cmd = xtcp_async_cmd()
    if cmd is None:
        return [Row(k, v, status="pending: xtcp_async.cli not there yet") for k, v in labels.items()], None
    flags = service_flags(cmd)
    needed = {"--sink", "--count", "--interval", "--poll-timeout", "--stats-json", "--metrics-listen"}
    if missing := needed - flags:
        return [Row(k, v, status=f"pending: xtcp-async lacks {sorted(missing)}")
                for k, v in labels.items()], None
    out_file = workdir / "service.jsonl"
    sinks = {"service_null_pblist": ("null://?format=protobuf-list", None),
             # A poll of 120k sockets is ~340 MB of jsonl, made faster than a file takes it: with
             # the default 64 MiB buffer the sink drops payloads (counted) and the row would time
             # less writing than a poll has. The bench holds a whole poll instead; any drop left
             # marks the row suspect.
             "service_file_jsonl": (f"file://{out_file}?format=jsonl&buffer_bytes={JSONL_BUFFER_BYTES}", out_file)}
    rows: list[Row] = []
    startup: Row | None = None
    for key, (sink, cleanup) in sinks.items():
        # No metrics listener: a fixed port would clash with anything else on this machine.
        interval, timeout = _schedule(key, expected_sockets, opts)
        argv = [*cmd, "--sink", sink, "--interval", str(interval), "--poll-timeout", str(timeout),
                "--metrics-listen", "", "--log-level", "warning"]
        # jsonl is several times dearer per poll; fewer polls and runs keep the whole bench in minutes.
        polls, repeat = ((opts.jsonl_polls, opts.jsonl_repeat) if key == "service_file_jsonl"
                         else (opts.polls, opts.repeat))
        print(f"      {key}: {repeat} × (1 and {polls + 1} polls), interval {interval} s", flush=True)
        stats_path = workdir / f"{key}.stats.json"
        one, _ = _stats_runs(argv, 1, repeat, stats_path, cleanup)
        many, reports = _stats_runs(argv, polls + 1, repeat, stats_path, cleanup)
        d = Differential.of(polls, one, many)
        # Wall per poll from the run lengths would only show the interval; the service's own
        # duration of its last poll (dump, decode, encode, hand-off) says how long a poll takes.
        durations = [float(r["last_poll_duration_s"]) for r in reports if r.get("last_poll_duration_s")]
        row = Row(key, labels[key], d.cpu_s, Stat.of(durations) if durations else None,
                  many.max_rss_bytes, detail=d.to_json())
        row.detail.update(stats_reports=reports, interval_s=interval, poll_timeout_s=timeout,
                          wall_s_is="the service's last_poll_duration_s")
        stalls = [float(r.get("max_dump_stall_s", 0.0)) for r in reports if r]
        if stalls:
            row.extra["max_dump_stall_s"] = {"min": min(stalls), "median": Stat.of(stalls).median,
                                             "max": max(stalls)}
            worst = max((r for r in reports if r), key=lambda r: float(r.get("max_dump_stall_s", 0.0)))
            row.extra["worst_stall_cpu_share"] = float(worst.get("max_dump_stall_cpu_share", 0.0))
        callbacks = [float(r.get("max_reader_callback_s", 0.0)) for r in reports if r]
        if callbacks:
            row.extra["max_reader_callback_s"] = max(callbacks)
        problems = [f"{k}={total} in {len(reports)} runs" for k in ("polls_failed", "poll_timeouts")
                    if (total := sum(int(r.get(k) or 0) for r in reports))]
        if jitter := _jitter_problem(d):
            problems.append(jitter)
        dropped = sum(n for r in reports for sink in (r.get("sinks") or {}).values()
                      for n in (sink.get("dropped") or {}).values())
        if dropped:
            problems.append(f"sinks dropped {dropped} payloads in {len(reports)} runs")
        seen = [int(r.get("last_poll_sockets", 0)) for r in reports if r]
        if seen and min(seen) < expected_sockets:
            problems.append(f"saw {min(seen)} sockets < {expected_sockets} held")
        if problems:
            row.status = "suspect: " + ", ".join(sorted(set(problems)))
        rows.append(row)
        if key == "service_file_jsonl":
            floor = _write_floor_row(reports, workdir, opts, polls)
            if floor is not None:
                rows.append(floor)
        if key == "service_null_pblist":
            startup = Row("service_startup", "   xtcp-async start-up + 1 poll (null)", one.cpu_s,
                          one.wall_s, one.max_rss_bytes, detail=one.to_json())
    return rows, startup


def _write_floor_row(reports: list[dict[str, Any]], workdir: Path, opts: Options, polls: int) -> Row | None:
    """d′: writing as many bytes per poll as the jsonl row wrote, and nothing else (bench.writefloor)."""
    per_poll = [int(r["bytes_encoded"]) / int(r["polls"]) for r in reports if r.get("polls")]
    if not per_poll:
        return None
    nbytes = int(statistics.median(per_poll))
    argv = [PY, "-m", "bench.writefloor", "--bytes", str(nbytes), "--file", str(workdir / "floor.out")]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                      env.get("PYTHONPATH")]))
    row = _differential_row("write_floor_jsonl", "d' the same bytes appended to a file, 4 MiB writes",
                            argv, replace(opts, repeat=opts.jsonl_repeat), polls, env)[0]
    row.extra["bytes_per_poll"] = nbytes
    return row


def _one_round(opts: Options, workdir: Path, sockets: int) -> tuple[list[Row], Row | None]:
    """Every row measured once: the raw dump, then the service (the ss runs frame the round)."""
    rows = _floor_rows(opts, sockets)
    service_rows, startup = _service_rows(opts, workdir, sockets)
    return rows + service_rows, startup


def _merge_rows(per_round: list[list[Row]]) -> list[Row]:
    """One row per key: min / median over the rounds, the worst stall, every suspect reason."""
    merged: list[Row] = []
    for key in dict.fromkeys(r.key for rows in per_round for r in rows):
        same = [r for rows in per_round for r in rows if r.key == key]
        row = Row(key, same[0].label, merge_stat([r.cpu_s for r in same]), merge_stat([r.wall_s for r in same]),
                  merge_stat([r.rss_bytes for r in same]))
        bad = sorted({r.status for r in same if r.status != "ok"})
        if bad:
            row.status = "; ".join(bad)
        stalls = [r.extra["max_dump_stall_s"] for r in same if "max_dump_stall_s" in r.extra]
        if stalls:
            worst = max(range(len(stalls)), key=lambda i: stalls[i]["max"])
            row.extra["max_dump_stall_s"] = {"min": min(s["min"] for s in stalls),
                                             "median": Stat.of([s["median"] for s in stalls]).median,
                                             "max": stalls[worst]["max"]}
            with_stall = [r for r in same if "max_dump_stall_s" in r.extra]
            row.extra["worst_stall_cpu_share"] = with_stall[worst].extra.get("worst_stall_cpu_share", 0.0)
        if per_poll := [r.extra["bytes_per_poll"] for r in same if "bytes_per_poll" in r.extra]:
            row.extra["bytes_per_poll"] = int(statistics.median(per_poll))
        row.detail = {"rounds": [r.detail for r in same]}
        merged.append(row)
    return merged


def run_size(sockets: int, opts: Options, workdir: Path) -> dict[str, Any]:
    connections = max(1, sockets // 2)
    print(f"\n== {2 * connections} sockets: starting the load generator …", flush=True)
    once = replace(opts, repeat=1, jsonl_repeat=1)
    with LoadGen(connections) as lg:
        print(f"   {lg.sockets} established in {lg.setup_s:.2f} s over {len(lg.ports)} worker pairs",
              flush=True)
        tcp_line = subprocess.run(["ss", "-s"], capture_output=True, text=True,
                                  check=False).stdout.splitlines()[1:2]
        ss_rows: list[Row] = []
        per_round: list[list[Row]] = []
        startups: list[Row] = []
        for i in range(opts.repeat):
            print(f"   round {i + 1}/{opts.repeat}: ss, raw dumps, the service …", flush=True)
            ss_rows.append(_ss_row(once))
            rows, startup = _one_round(once, workdir, lg.sockets)
            per_round.append(rows)
            if startup is not None:
                startups.append(startup)
        ss_rows.append(_ss_row(once))  # closes the last round
    ss_cpu = [r.cpu_s.median for r in ss_rows if r.cpu_s is not None]
    rounds = [Round({r.key: (r.cpu_s.median if r.cpu_s is not None and r.status == "ok" else None) for r in rows})
              for rows in per_round]
    ss_row = Row("ss", ss_rows[0].label, merge_stat([r.cpu_s for r in ss_rows]),
                 merge_stat([r.wall_s for r in ss_rows]), merge_stat([r.rss_bytes for r in ss_rows]),
                 detail={"rounds": [r.detail for r in ss_rows]})
    rows = [ss_row, *_merge_rows(per_round)]
    startup = _merge_rows([[s] for s in startups])[0] if startups else None
    spreads = ratios(rounds, ss_cpu, lg.sockets)
    result = {
        "sockets": lg.sockets, "connections": connections, "loadgen_setup_s": lg.setup_s,
        "loadgen_workers": 2 * len(lg.ports), "ss_summary": tcp_line[0].strip() if tcp_line else "",
        "rows": {r.key: r.to_json() for r in rows},
        "startup": startup.to_json() if startup else None,
        "ratios": {k: v.to_json() if v else None for k, v in spreads.items()},
        "rounds": opts.repeat,
    }
    print_table(result, rows, startup)
    return result


def _fmt(stat: Stat | None, scale: float = 1.0, digits: int = 3) -> str:
    if stat is None:
        return "-"
    return f"{stat.min * scale:.{digits}f} / {stat.median * scale:.{digits}f}"


def print_table(result: dict[str, Any], rows: list[Row], startup: Row | None) -> None:
    n = result["sockets"]
    print(f"\n{n} sockets (per poll; min / median)")
    print(f"{'':40} {'CPU s':>17} {'wall s':>17} {'peak RSS MiB':>15} {'CPU µs/socket':>15}  stall ms")
    for row in [*rows, *([startup] if startup else [])]:
        if row.cpu_s is None:
            print(f"{row.label:40} {row.status}")
            continue
        per_socket = Stat(row.cpu_s.min / n * 1e6, row.cpu_s.median / n * 1e6) if n else None
        stall = row.extra.get("max_dump_stall_s")
        # How much of the worst stall the process was on CPU: far below 100%, the OS ran others.
        stall_txt = (f"{stall['max'] * 1e3:.1f} (max; {row.extra['worst_stall_cpu_share']:.0%} on CPU)"
                     if stall else "")
        flag = "" if row.status == "ok" else f"  [{row.status}]"
        print(f"{row.label:40} {_fmt(row.cpu_s):>17} {_fmt(row.wall_s):>17} "
              f"{_fmt(row.rss_bytes, 2**-20, 0):>15} {_fmt(per_socket, 1, 2):>15}  {stall_txt}{flag}")
    print(f"   per-round figures over {result.get('rounds', 1)} rounds: median (min – max)")
    for name, value in result["ratios"].items():
        if value is not None:
            print(f"   {name}: {value['median']:.2f} ({value['min']:.2f} – {value['max']:.2f})")


def write_results(doc: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(out)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    # `kill` should unwind like Ctrl-C does, so the load generator's workers are always stopped.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _parse_sizes(text: str) -> list[int]:
    sizes = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        sizes.append(int(float(part[:-1]) * 1000) if part.endswith("k") else int(part))
    return sizes


def compile_package() -> bool:
    """Write the package's bytecode once, as installing a wheel does, before anything is timed.

    In a checkout under PYTHONDONTWRITEBYTECODE (set on the bench machines) every start of the
    service would otherwise compile each of its ~90 modules again (~45 ms of the start-up line)
    — a cost of the working tree, not of the service. compileall writes regardless of that
    variable, and Python reads bytecode it finds either way.
    """
    import compileall

    package = Path(__file__).resolve().parents[1] / "xtcp_async"
    return bool(compileall.compile_dir(str(package), quiet=1))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["replay"]:
        from bench.replay import main as replay_main

        return int(replay_main(argv[1:]))
    if argv[:1] == ["netns"]:
        from bench.netns_bench import main as netns_main

        return int(netns_main(argv[1:]))
    if argv[:1] == ["health"]:  # issue 12: top, metrics summary, enrichment and aggregates
        from bench.health import main as health_main

        return int(health_main(argv[1:]))
    if argv[:1] == ["whatsent"]:
        from bench.whatsent import main as whatsent_main

        return int(whatsent_main(argv[1:]))
    if argv[:1] == ["http-flood"]:
        from bench.http_flood import main as flood_main

        return flood_main(argv[1:])
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0],
                                epilog="Also: python -m bench replay --help, python -m bench http-flood --help, "
                                       "python -m bench whatsent --help, python -m bench health --help, "
                                       "python -m bench netns --help")
    p.add_argument("--sizes", type=_parse_sizes, default=list(DEFAULT_SIZES),
                   help="socket counts, comma-separated (20k,60k,120k); each is 2 × connections")
    p.add_argument("--repeat", type=int, default=5,
                   help="rounds: each measures every command once, ss before and after (default 5)")
    p.add_argument("--polls", type=int, default=10, help="k: the services run k + 1 polls (default 10)")
    p.add_argument("--interval", type=float, default=None,
                   help="service --interval, s (default: scaled to the size so no poll overruns; "
                        "--poll-timeout is 0.9 × it)")
    p.add_argument("--jsonl-polls", type=int, default=3, help="k for the jsonl row (default 3)")
    p.add_argument("--jsonl-repeat", type=int, default=3, help="runs for the jsonl row (default 3)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {QUICK_SIZE} sockets, 2 runs, 2 polls, short interval")
    p.add_argument("--netns-namespaces", type=int, default=300,
                   help="then `bench netns`: --netns all over this many namespaces × 20 sockets (0: skip)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "latest.json")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.repeat, args.polls, args.interval = [QUICK_SIZE], 2, 2, 0.2
        args.jsonl_polls, args.jsonl_repeat = 2, 2
        args.netns_namespaces = min(args.netns_namespaces, 20)
    if shutil.which("ss") is None:
        p.error("ss (iproute2) is required")
    opts = Options(args.repeat, args.polls, args.interval, args.jsonl_polls, args.jsonl_repeat)
    compiled = compile_package()
    doc: dict[str, Any] = {
        "machine": machine_facts(),
        "options": {"sizes": args.sizes, "repeat": opts.repeat, "polls": opts.polls,
                    "interval_s": opts.interval_s or "auto", "jsonl_polls": opts.jsonl_polls,
                    "jsonl_repeat": opts.jsonl_repeat,
                    # False: no C compiler, so peak RSS includes the harness's own (see spawn.c).
                    "rss_exact": rss_is_exact(),
                    "bytecode_compiled": compiled},
        "sizes": [],
    }
    m = doc["machine"]
    print(f"machine: {m['nproc']} CPUs ({m['cpu_model']}), kernel {m['kernel']}, Python {m['python']}, "
          f"{m['ss']}; {opts.repeat} rounds, {opts.polls} + 1 polls", flush=True)
    try:
        with _sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="xtcp-bench-") as tmp:
            for size in args.sizes:
                doc["sizes"].append(run_size(size, opts, Path(tmp)))
                write_results(doc, args.out)
    except KeyboardInterrupt:
        print("\ninterrupted: load generator stopped; partial results kept", file=sys.stderr)
        write_results(doc, args.out)
        return 130
    except ChildFailed as exc:
        print(f"\na measured command failed: {exc}", file=sys.stderr)
        write_results(doc, args.out)
        return 1
    if args.netns_namespaces:
        doc["netns"] = _netns_section(args.netns_namespaces, args.quick, args.out.with_name("netns.json"))
        write_results(doc, args.out)
    print(f"\nwrote {args.out}")
    return 0


def _netns_section(namespaces: int, quick: bool, out: Path) -> dict[str, Any]:
    """The many-namespaces row (bench.netns_bench, in namespaces of its own; needs root)."""
    print(f"\n== {namespaces} network namespaces × 20 sockets, --netns all …", flush=True)
    if os.geteuid() != 0:
        print("   skipped: making network namespaces needs root", flush=True)
        return {"status": "skipped: needs root"}
    extra = ["--repeat", "2", "--polls", "2", "--open-sample", "20", "--child-ehash", "0"] if quick else []
    code = subprocess.run([PY, "-m", "bench", "netns", "--namespaces", str(namespaces), "--out", str(out),
                           *extra], check=False).returncode
    if code != 0 or not out.exists():
        return {"status": f"failed: exit {code}"}
    result: dict[str, Any] = json.loads(out.read_text())
    return result


if __name__ == "__main__":
    sys.exit(main())
