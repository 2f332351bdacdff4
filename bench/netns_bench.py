"""``python -m bench netns``: one ``--netns all`` poll over N namespaces × S sockets, what it costs.

The scene runs in namespaces of its own (``unshare --net --mount --pid --fork --mount-proc``, the
command re-executes itself inside), so the collector's ``--netns all`` sees exactly the N pod-like
namespaces made here plus its own, not the host's sockets or other namespaces:

* N holder processes, each ``unshare -n`` (lo up, then ``sleep``): unnamed namespaces found
  through /proc, like pods' sandboxes;
* in each, S/2 loopback connections (IPv4 and IPv6 alternating, S sockets), made by this process
  from a short-lived thread that setns()'d into it (sockets keep their namespace);
* the service polling ``--netns all`` to ``null://`` (protobuf-list): steady-state CPU per poll
  = (CPU of k + 1 polls − CPU of 1) / k from wait4; wall = its own last_poll_duration_s; stall =
  the longest event-loop stall while dumps were read (max_dump_stall_s), with its CPU share;
* the reference: ``nsenter -t PID -n ss -tin`` once per namespace, as a shell loop;
* how long opening one namespace's socket takes, three ways (bench.netns_open).

Each scene is run twice by default: with the namespaces sharing the host's TCP hash table (the
kernel default, ``net.ipv4.tcp_child_ehash_entries=0``: every dump in a namespace walks every TCP
socket of the host) and with tables of their own (``--child-ehash``).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.measure import Differential, Stat, Summary, measure, run_once
from bench.netns_open import measure_open_methods

INSIDE = "XTCP_BENCH_NETNS_INSIDE"
HOST_SOCKSTAT_FD = "XTCP_BENCH_HOST_SOCKSTAT_FD"
RESULTS = Path(__file__).resolve().parent / "results" / "netns.json"


def _setns(path: str) -> None:
    from xtcp_async.netns.enter import CLONE_NEWNET, _setns

    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd, CLONE_NEWNET)
    finally:
        os.close(fd)


def start_holders(n: int) -> list[subprocess.Popen[bytes]]:
    """N processes, each alone in a fresh network namespace with lo up."""
    own = os.stat("/proc/self/ns/net").st_ino
    holders = [subprocess.Popen(["unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep 100000"])
               for _ in range(n)]
    deadline = time.monotonic() + 120
    for h in holders:
        while True:
            try:
                # `sleep` has replaced sh once lo is up.
                if (os.stat(f"/proc/{h.pid}/ns/net").st_ino != own
                        and os.readlink(f"/proc/{h.pid}/exe").endswith("sleep")):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("holders did not start")
            time.sleep(0.005)
    return holders


def fill(pid: int, sockets: int, held: list[socket.socket]) -> None:
    """``sockets`` sockets in pid's namespace: a listener per family and connections (both ends)."""
    def work() -> None:
        _setns(f"/proc/{pid}/ns/net")
        listeners = {}
        for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            ls = socket.socket(fam, socket.SOCK_STREAM)
            ls.bind((host, 0))
            ls.listen(64)
            listeners[fam] = ls
            held.append(ls)
        # Two listeners count: the rest are connection ends, two per connection.
        for i in range(max(0, sockets - 2) // 2):
            fam = socket.AF_INET if i % 2 == 0 else socket.AF_INET6
            c = socket.create_connection(listeners[fam].getsockname()[:2])
            s, _ = listeners[fam].accept()
            held.extend((c, s))

    t = threading.Thread(target=work)  # a fresh thread: it ends inside the namespace
    t.start()
    t.join()


def run_inside(args: argparse.Namespace) -> list[dict[str, Any]]:
    os.makedirs("/run/netns", exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "xtcp-bench-netns", "/run/netns"], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    return [run_scene(args, entries) for entries in args.child_ehash]


def run_scene(args: argparse.Namespace, child_ehash: int) -> dict[str, Any]:
    """Make the namespaces (with ``child_ehash``), measure, tear down."""
    # Namespaces created from this one get a TCP hash table of their own when this is > 0 (Linux
    # 6.1+): a dump in one then walks its own small table instead of the host-wide one.
    subprocess.run(["sysctl", "-qw", f"net.ipv4.tcp_child_ehash_entries={child_ehash}"], check=True)
    t0 = time.monotonic()
    holders = start_holders(args.namespaces)
    held: list[socket.socket] = []
    try:
        for h in holders:
            fill(h.pid, args.sockets, held)
        setup_s = time.monotonic() - t0
        print(f"   tcp_child_ehash_entries {child_ehash}: {len(holders)} namespaces, {len(held)} sockets held, "
              f"set up in {setup_s:.1f} s", flush=True)
        result = _measure(args, holders, len(held), setup_s)
        result["child_ehash_entries"] = child_ehash
        print_result(result)
        return result
    finally:
        for s in held:
            s.close()
        for h in holders:
            h.kill()
            h.wait()


def _measure(args: argparse.Namespace, holders: list[subprocess.Popen[bytes]], n_sockets: int,
             setup_s: float) -> dict[str, Any]:
    exe = Path(sys.executable).with_name("xtcp-async")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "xtcp_async"]
    host_before = _host_tcp_sockets()
    out: dict[str, Any] = {"namespaces": len(holders), "sockets": n_sockets, "setup_s": setup_s}
    with tempfile.TemporaryDirectory(prefix="xtcp-bench-netns-") as tmp:
        stats_path = Path(tmp) / "stats.json"
        argv = [*cmd, "--netns", "all", "--sink", "null://?format=protobuf-list", "--interval",
                str(args.interval), "--poll-timeout", str(round(args.interval * 0.9, 3)), "--metrics-listen", "",
                "--log-level", "warning", "--stats-json", str(stats_path)]
        one = measure([*argv, "--count", "1"], args.repeat, stderr=subprocess.DEVNULL)
        reports = []
        many_runs = []
        for _ in range(args.repeat):
            many_runs.append(run_once([*argv, "--count", str(args.polls + 1)], stderr=subprocess.DEVNULL))
            reports.append(json.loads(stats_path.read_text()))
        many = Summary(argv, many_runs, Stat.of([r.cpu_s for r in many_runs]),
                                               Stat.of([r.wall_s for r in many_runs]),
                                               Stat.of([float(r.max_rss_bytes) for r in many_runs]))
        d = Differential.of(args.polls, one, many)
        pids = " ".join(str(h.pid) for h in holders)
        ss = measure(["sh", "-c", f"for p in {pids}; do nsenter -t $p -n ss -tin; done > /dev/null"],
                     args.repeat)
    host_after = _host_tcp_sockets()
    out["host_tcp_sockets"] = [host_before, host_after]
    # The shared hash table makes every dump cost ∝ the host's sockets: if another program changed
    # them during the runs, or start-up jitter outweighs k polls, the per-poll figure is not one.
    problems = []
    if abs(host_after - host_before) > max(1000, host_before // 10):
        problems.append(f"host TCP sockets changed {host_before} → {host_after} during the runs")
    if d.cpu_s.min <= 0 or d.cpu_s.median <= 0:
        problems.append("k polls added no measurable CPU over 1 (start-up jitter)")
    out["status"] = "suspect: " + "; ".join(problems) if problems else "ok"
    walls = [float(r["last_poll_duration_s"]) for r in reports]
    stalls = [float(r["max_dump_stall_s"]) for r in reports]
    worst = max(reports, key=lambda r: float(r["max_dump_stall_s"]))
    out["service"] = {
        "cpu_s_per_poll": {"min": d.cpu_s.min, "median": d.cpu_s.median},
        "wall_s_per_poll": {"min": min(walls), "median": Stat.of(walls).median},
        "peak_rss_bytes": {"min": many.max_rss_bytes.min, "median": many.max_rss_bytes.median},
        "max_dump_stall_s": max(stalls), "worst_stall_cpu_share": float(worst["max_dump_stall_cpu_share"]),
        "max_loop_stall_s": max(float(r["max_loop_stall_s"]) for r in reports),
        "max_reader_callback_s": max(float(r["max_reader_callback_s"]) for r in reports),
        "namespaces_polled": sorted({int(r["netns_polled"]) for r in reports}),
        "sockets_per_poll": sorted({int(r["last_poll_sockets"]) for r in reports}),
        "polls_failed": sum(int(r["polls_failed"]) for r in reports),
        "startup_cpu_s": {"min": one.cpu_s.min, "median": one.cpu_s.median},
        "detail": d.to_json(),
    }
    out["ss_per_namespace"] = {"cpu_s": {"min": ss.cpu_s.min, "median": ss.cpu_s.median},
                               "wall_s": {"min": ss.wall_s.min, "median": ss.wall_s.median}}
    out["open_methods"] = measure_open_methods([h.pid for h in holders[: args.open_sample]])
    return out


def print_result(r: dict[str, Any]) -> None:
    s, ss = r["service"], r["ss_per_namespace"]
    print(f"\n{r['namespaces']} namespaces × {r['sockets'] // max(1, r['namespaces'])} sockets "
          f"({r['sockets']} sockets; per poll; min / median); host namespace: {r['host_tcp_sockets'][0]} → "
          f"{r['host_tcp_sockets'][1]} TCP sockets; tcp_child_ehash_entries {r['child_ehash_entries']}")
    if r["status"] != "ok":
        print(f"   [{r['status']}]")
    print(f"{'':44} {'CPU s':>17} {'wall s':>17} {'peak RSS MiB':>15}  stall ms")
    rss = s["peak_rss_bytes"]
    print(f"{'e  xtcp-async --netns all → null':44} {s['cpu_s_per_poll']['min']:>8.3f} / "
          f"{s['cpu_s_per_poll']['median']:<6.3f} {s['wall_s_per_poll']['min']:>8.3f} / "
          f"{s['wall_s_per_poll']['median']:<6.3f} {rss['min'] / 2**20:>6.0f} / {rss['median'] / 2**20:<6.0f} "
          f"{s['max_dump_stall_s'] * 1e3:.1f} (max; {s['worst_stall_cpu_share']:.0%} on CPU)")
    print(f"{'   nsenter -t PID -n ss -tin, per namespace':44} {ss['cpu_s']['min']:>8.3f} / "
          f"{ss['cpu_s']['median']:<6.3f} {ss['wall_s']['min']:>8.3f} / {ss['wall_s']['median']:<6.3f}")
    print(f"   namespaces polled {s['namespaces_polled']}, sockets per poll {s['sockets_per_poll']}, "
          f"failed polls {s['polls_failed']}, start-up + 1 poll CPU {s['startup_cpu_s']['min']:.3f} s, "
          f"longest netlink reader callback {s['max_reader_callback_s'] * 1e3:.2f} ms")
    print("   opening one namespace's sock_diag socket (µs per namespace, min / median of "
          f"{r['open_methods']['namespaces']}):")
    for name, v in r["open_methods"]["methods"].items():
        print(f"     {name:52} {v['us_min']:8.1f} / {v['us_median']:.1f}")


def _host_tcp_sockets() -> int:
    """TCP sockets (in use + TIME-WAIT) of the host's namespace: every dump in a namespace that shares
    its hash table walks them too. Read through an fd opened in the host's namespace (a /proc/net
    file keeps the namespace it was opened in), so it works from inside the bench's namespaces."""
    fd = int(os.environ.get(HOST_SOCKSTAT_FD, "-1"))
    text = os.pread(fd, 8192, 0).decode() if fd >= 0 else Path("/proc/net/sockstat").read_text()
    tcp = text.split("TCP: inuse ", 1)[1].split()
    return int(tcp[0]) + int(tcp[tcp.index("tw") + 1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench netns", description=__doc__.split("\n")[0])
    p.add_argument("--namespaces", type=int, default=300)
    p.add_argument("--sockets", type=int, default=20, help="sockets per namespace (default 20)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--polls", type=int, default=5)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--open-sample", type=int, default=100, help="namespaces the open methods are timed on")
    p.add_argument("--child-ehash", type=lambda v: [int(x) for x in v.split(",")], default=[0, 1024],
                   help="net.ipv4.tcp_child_ehash_entries for the namespaces made, one scene per value "
                        "(default 0,1024: 0 = they share the host's TCP hash table, the kernel default)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if not os.environ.get(INSIDE):
        raw = sys.argv[1:] if argv is None else ["netns", *argv]
        sockstat = os.open("/proc/net/sockstat", os.O_RDONLY)
        env = {**os.environ, INSIDE: "1", HOST_SOCKSTAT_FD: str(sockstat),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                           os.environ.get("PYTHONPATH")]))}
        try:
            return subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc",
                                   sys.executable, "-m", "bench", *raw], env=env, check=False,
                                  pass_fds=(sockstat,)).returncode
        finally:
            os.close(sockstat)
    results = run_inside(args)
    if len(results) > 1:
        base, per_ns = results[0]["service"]["cpu_s_per_poll"], results[-1]["service"]["cpu_s_per_poll"]
        print(f"\n   CPU ratio shared / own hash tables: {base['min'] / per_ns['min']:.1f} (mins) / "
              f"{base['median'] / per_ns['median']:.1f} (medians)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"scenes": results}, indent=1))
    print(f"\nwrote {args.out}")
    return 0
