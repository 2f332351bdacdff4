"""`xtcp-async`: parse flags, build the Config, run the service, map errors to exit codes.

Exit codes: 0 done, 1 runtime failure (netlink unusable, data not delivered under --once),
2 configuration error (one line naming the field), 130 a second signal cut shutdown short.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn

from xtcp_async.buildinfo import VersionAction
from xtcp_async.errors import ConfigError, XtcpError

log = logging.getLogger("xtcp_async")

EPILOG = """\
Every option can also be set as an environment variable XTCP_<NAME> (e.g. XTCP_INTERVAL=5,
XTCP_SINK="udp://10.0.0.1:9000 null://") and in a TOML file (--config or XTCP_CONFIG) as
name = value (e.g. interval = 5, sink = ["kafka://127.0.0.1:9092/xtcp"]); flags win over the
environment, which wins over the file. Sink URLs:
  stdout://                         JSON lines on standard output (the default sink)
  file:///var/log/xtcp.jsonl        append to a file
  udp://HOST:PORT?max_datagram=N    one payload per datagram (default 65507 bytes)
  kafka://H1:9092,H2:9092/TOPIC     Kafka topic (extra: kafka)
  nsq://HOST:4150/TOPIC             NSQ topic (extra: nsq)
  null://                           discard (benchmarks)
Any sink URL takes ?format=jsonl|protobuf-list|protobuf-single.
`xtcp-async top` shows this host's TCP health on one screen (see xtcp-async top --help).
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (not the whole usage), like every other config error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"xtcp-async: config: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="xtcp-async", description="Poll every TCP socket's kernel state (inet_diag/tcp_info) and "
        "stream it as xtcp2-compatible records.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=argparse.SUPPRESS)
    a = p.add_argument
    a("--config", metavar="FILE", help="TOML config file (lowest precedence)")
    a("--sink", metavar="URL", action="append",
      help="where records go; repeat for several sinks (default: stdout://)")
    a("--format", choices=["jsonl", "protobuf-list", "protobuf-single"],
      help="payload format for sinks whose URL has no ?format= (default: per sink: jsonl for "
           "stdout/file, protobuf-list otherwise)")
    a("--interval", metavar="S", type=float, help="seconds between polls (default 10)")
    a("--jitter", metavar="F", type=float, help="randomize each interval by ±F of itself, 0 ≤ F < 1 (default 0)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--count", metavar="N", type=int, help="stop after N polls")
    g.add_argument("--once", action="store_true", help="poll once, flush every sink, exit")
    a("--family", metavar="LIST", help="address families to dump: inet,inet6 (default both)")
    a("--states", metavar="LIST", help="TCP states to dump, comma-separated (default all), e.g. "
      "established,listen; also ss's groups connected, synchronized, bucket, big, and -NAME to "
      "exclude: --states=all,-time-wait")
    a("--poll-timeout", metavar="S", type=float,
      help="seconds a dump may take before it is abandoned and counted (default 5, or 80%% of "
           "--interval when that is shorter)")
    a("--hostname", metavar="H", help="hostname stamped on every record (default: this machine's)")
    a("--location", metavar="L", help="location / PoP stamped on every record")
    a("--label", metavar="X", help="free-form label stamped on every record")
    a("--tag", metavar="T", help="free-form tag stamped on every record")
    a("--max-batch-rows", metavar="N", type=int, help="records per payload at most (default 10000)")
    a("--max-batch-bytes", metavar="N", type=int,
      help="bytes per payload at most (default 4194304); sinks may lower it")
    a("--log-level", choices=["debug", "info", "warning", "error"], help="default info")
    a("--log-format", choices=["text", "json"], help="stderr log format (default text)")
    a("--loop", choices=["auto", "asyncio", "uvloop"], help="event loop (default auto: uvloop if installed)")
    a("--shutdown-grace", metavar="S", type=float,
      help="seconds to flush sinks after a stop signal or the last poll (default 10)")
    a("--metrics-listen", metavar="HOST:PORT",
      help="Prometheus /metrics, /healthz, /readyz listener (default 127.0.0.1:9088; empty: off)")
    a("--stats-json", metavar="PATH", help="write the run's counters as JSON to PATH at exit")
    # issue 10: network namespaces
    a("--netns", metavar="self|all|NAME[,NAME...]",
      help="network namespaces to poll: self (default: the one it runs in), all (every namespace on "
           "the host: /run/netns names and every process's; needs CAP_SYS_ADMIN, CAP_SYS_PTRACE), or "
           "ip-netns names (add 'self' to keep the own one)")
    a("--netns-rescan", metavar="S", type=float,
      help="seconds between namespace rediscoveries (default: before every poll)")
    # TCP health (issue 12)
    a("--asn-db", metavar="PATH", help="prefix → ASN database: MaxMind ASN .mmdb or routeviews pfx2as "
      "text (gzip or not); fills inet_diag_msg_socket_dest_asn; SIGHUP reloads it")
    a("--prefix-len", metavar="V4,V6", help="fill the remote prefix fields, cut to these lengths (e.g. 24,48)")
    a("--aggregate", action="store_true", help="add one aggregate record per group of sockets per poll "
      "for sinks with ?records=aggregates|both")
    a("--aggregate-by", metavar="LIST", help="group keys, comma-separated: location, hostname, netns, asn, "
      "prefix, port (local port of listening services), cc, state (default asn)")
    a("--aggregate-max-groups", metavar="N", type=int,
      help="groups per poll at most; the smallest are folded into one 'other' group (default 1000)")
    a("--metrics-ports", metavar="N", type=int,
      help="listening ports labelled by name in the TCP-health metrics, the rest as 'other' (default 20)")
    w = p.add_argument_group("what to send (filter in the kernel → sample → change-only)")
    w.add_argument("--filter", metavar="EXPR",
                   help="ss filter expression, compiled to kernel bytecode: the kernel skips other sockets, "
                        "e.g. \"dport = :443 or ( src 10.0.0.0/8 and sport >= :1024 )\"")
    w.add_argument("--exclude-port", metavar="P[,P...]",
                   help="leave out sockets with this local or remote port (added to --filter)")
    w.add_argument("--sample", metavar="[EXPR=]RATE", action="append",
                   help="keep a share 0 < RATE ≤ 1 of sockets, by a hash of the socket cookie (the same "
                        "sockets every poll); repeat with EXPR=RATE per traffic class, first match wins, "
                        "unmatched sockets are kept whole; e.g. --sample 'dport = :443'=0.01 --sample '*'=0.1")
    w.add_argument("--emit", choices=["all", "changed"],
                   help="changed: only new sockets, changed ones and a final 'closed' record (default all)")
    w.add_argument("--heartbeat", metavar="N", type=int,
                   help="with --emit changed: send every socket at least every N polls (default 0: never)")
    w.add_argument("--emit-fields", metavar="LIST",
                   help="fields whose change --emit changed reports (default: bytes_acked/received, segs "
                        "in/out, retrans, total_retrans, lost, state, ca_state, snd_cwnd, snd_ssthresh)")
    p.add_argument("--version", action=VersionAction)
    return p


def _flags(ns: argparse.Namespace) -> tuple[dict[str, Any], str | None]:
    flags = vars(ns).copy()
    config_file = flags.pop("config", None)
    if flags.get("once") is False:
        flags.pop("once")
    if flags.get("aggregate") is False:
        flags.pop("aggregate")
    return flags, config_file


def _runner(loop_name: str) -> Callable[[Coroutine[Any, Any, int]], int]:
    if loop_name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if loop_name == "uvloop":
                raise ConfigError("config: --loop: uvloop is not installed") from None
        else:
            return lambda coro: int(uvloop.run(coro))
    import asyncio  # here, not at the top: main() imports it with the cyclic GC off (start-up cost)

    return asyncio.run


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["top"]:  # the on-box view (issue 12); everything else parses as before
        from xtcp_async.top.cli import main as top_main

        return top_main(args[1:])
    parser = build_parser()
    ns = parser.parse_args(args)
    flags, config_file = _flags(ns)
    # issue 13: start-up creates ~70k objects that live for the whole run (modules, pydantic
    # schemas, numpy, asyncio); the cyclic GC would walk them again and again in ~100 collections
    # (~14 ms CPU), and the full collection before freezing them (Service.run) another ~13 ms. So
    # the GC stays off until they are all there, and they are frozen without that collection:
    # the ~800 garbage objects among them (~0.2 MB: the argparse parser, the pure-Python datetime
    # classes its C module replaces, ...) stay for good, which costs less than finding them.
    # Service.run still collects and freezes what it adds.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        from xtcp_async.ops.heap import keep_freed_memory

        keep_freed_memory()  # each poll reuses the last one's pages (see xtcp_async.ops.heap)
        from xtcp_async.config import load_config
        from xtcp_async.health_stages import HealthStages
        from xtcp_async.logs import setup_logging
        from xtcp_async.service import build_sinks, run_service
        from xtcp_async.stages.probe import check_kernel_filter

        try:
            cfg = load_config(flags, config_file)
            sinks = build_sinks(cfg)  # validates every sink's options before anything starts
            stages = HealthStages.from_config(cfg)  # loads --asn-db: unreadable is exit 2 too
            check_kernel_filter(cfg)  # the kernel audits the compiled --filter once, now
            run = _runner(cfg.settings.loop)
        except ConfigError as exc:
            print(f"xtcp-async: {exc}", file=sys.stderr)
            return 2
        gc.freeze()
    finally:
        if gc_was_enabled:
            gc.enable()
    setup_logging(cfg.settings.log_level, cfg.settings.log_format)
    try:
        return run(run_service(cfg, sinks, hard_exit=True, stages=stages))
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:  # found when a sink started (e.g. a mechanism the broker refuses)
        print(f"xtcp-async: {exc}", file=sys.stderr)
        return 2
    except XtcpError as exc:
        log.error("%s", exc)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
