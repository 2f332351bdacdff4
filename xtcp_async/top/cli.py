"""``xtcp-async top``: this host's TCP health on one screen, refreshed every interval until Ctrl-C.

Each refresh dumps every socket (as a poll does), enriches the remote addresses (prefix, and ASN
with --asn-db), and ranks the remote networks by RTT p99 and by retransmitted share, next to the
busiest listening ports. ``--json`` prints the same as one JSON object per refresh.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from collections.abc import Sequence
from typing import NoReturn

from xtcp_async.aggregate.columns import ColumnBuffer, PollColumns
from xtcp_async.aggregate.deltas import DeltaState
from xtcp_async.aggregate.poll import summarize
from xtcp_async.enrich.stage import DEFAULT_PREFIX_LENS, Enricher
from xtcp_async.errors import ConfigError, XtcpError
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.decode import decode_messages
from xtcp_async.netlink.request import states_mask
from xtcp_async.netlink.socket import DiagSocket
from xtcp_async.netlink.source import DumpSource
from xtcp_async.top.render import render
from xtcp_async.top.view import top_view

CLEAR = "\x1b[H\x1b[2J"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"xtcp-async top: config: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="xtcp-async top", description=__doc__.split("\n")[0])
    a = p.add_argument
    a("--interval", metavar="S", type=float, default=2.0, help="seconds between refreshes (default 2)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--once", action="store_true", help="one refresh, then exit")
    g.add_argument("--count", metavar="N", type=int, help="N refreshes, then exit")
    a("--json", action="store_true", help="one JSON object per refresh instead of the text screen")
    a("-n", "--top", metavar="N", type=int, default=5, help="rows per ranking (default 5)")
    a("--asn-db", metavar="PATH", help="prefix → ASN database (.mmdb or pfx2as): adds the ASN rankings")
    a("--prefix-len", metavar="V4,V6", default="24,48", help="remote network size (default 24,48)")
    a("--family", metavar="LIST", default="inet,inet6", help="inet,inet6 (default both)")
    a("--states", metavar="LIST", default="all", help="TCP states (default all)")
    return p


def _prefix_lens(text: str) -> tuple[int, int]:
    parts = [p for p in text.replace(",", " ").split() if p]
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or int(parts[0]) > 32 or int(parts[1]) > 128:
        raise ConfigError("config: --prefix-len: expected IPv4,IPv6 lengths (0..32, 0..128), e.g. 24,48")
    return int(parts[0]), int(parts[1])


def _families(text: str) -> tuple[int, ...]:
    names = {"inet": c.AF_INET, "inet6": c.AF_INET6, "4": c.AF_INET, "6": c.AF_INET6}
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts or any(p not in names for p in parts):
        raise ConfigError(f"config: --family: {text!r} is not a list of inet, inet6")
    return tuple(dict.fromkeys(names[p] for p in parts))


#: Decode this many bytes of replies at a time and keep only the summary's columns: a refresh holds
#: ~110 bytes a socket instead of the whole dump (≈500 bytes a socket) and its full batch.
DECODE_BYTES = 1024 * 1024


async def snapshot(source: DumpSource, families: Sequence[int], states: int, timeout_s: float,
                   enricher: Enricher) -> PollColumns:
    """The summary columns of every socket of the given families and states, enriched."""
    buffer = ColumnBuffer()
    chunks: list[bytes] = []
    size = 0

    def flush() -> None:
        nonlocal chunks, size
        if chunks:
            buffer.add(PollColumns.of(enricher(decode_messages(chunks).batch)))
        chunks, size = [], 0

    for family in families:
        async for chunk in source.dump(family, states=states, ext=c.EXT_ALL, timeout_s=timeout_s):
            chunks.append(chunk.data)
            size += len(chunk.data)
            if size >= DECODE_BYTES:
                flush()
    flush()
    return buffer.take()


async def run_top(args: argparse.Namespace, enricher: Enricher, families: tuple[int, ...], states: int,
                  source: DumpSource | None = None) -> int:
    sock = source or DiagSocket()
    sock.open()
    state = DeltaState.empty()
    refreshes = 1 if args.once else args.count
    tty = sys.stdout.isatty() and not args.json and refreshes != 1
    host = socket.gethostname()
    try:
        done = 0
        while refreshes is None or done < refreshes:
            started = time.monotonic()
            cols = await snapshot(sock, families, states, max(args.interval, 5.0), enricher)
            summary, state = summarize(cols, state)
            view = top_view(summary, n=args.top, with_asn=enricher.table is not None)
            if args.json:
                sys.stdout.write(json.dumps(view, separators=(",", ":")) + "\n")
            else:
                text = render(view, host=host, when=time.strftime("%H:%M:%S"))
                sys.stdout.write((CLEAR if tty else ("\n" if done else "")) + text)
            sys.stdout.flush()
            done += 1
            if refreshes is None or done < refreshes:
                await asyncio.sleep(max(0.0, args.interval - (time.monotonic() - started)))
    finally:
        sock.close()
    return 0


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    try:
        if args.interval <= 0 or args.top < 1 or (args.count is not None and args.count < 1):
            raise ConfigError("config: --interval, --top and --count must be positive")
        families = _families(args.family)
        try:
            states = states_mask(args.states.replace(",", " ").split())
        except ValueError as exc:
            raise ConfigError(f"config: --states: {exc}") from None
        enricher = Enricher.load(args.asn_db, _prefix_lens(args.prefix_len) if args.prefix_len else DEFAULT_PREFIX_LENS)
    except ConfigError as exc:
        print(f"xtcp-async top: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run_top(args, enricher, families, states))
    except KeyboardInterrupt:
        return 0
    except XtcpError as exc:
        print(f"xtcp-async top: {exc}", file=sys.stderr)
        return 1
