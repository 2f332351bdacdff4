"""--filter against ss: for each expression, the kernel-filtered dump lists exactly the sockets
``ss -tanH EXPR`` lists in the same namespace scene (ss is the specification).

The scene (filter_scene.py) holds IPv4/IPv6 listeners on many ports and addresses of lo,
connections from several source addresses, v4-mapped peers of a dual-stack listener and
TIME-WAIT sockets. Our side runs in-process on a sock_diag socket opened inside the namespace,
so hundreds of expressions take seconds; a few run end to end through the CLI as well.
"""

from __future__ import annotations

import asyncio
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xtcp_async.netlink import constants as c
from xtcp_async.netlink.batch import SocketBatch
from xtcp_async.netlink.decode import decode_messages
from xtcp_async.netlink.filter_ast import parse
from xtcp_async.netlink.filter_bytecode import compile_filter
from xtcp_async.netlink.socket import DiagSocket
from xtcp_async.stages.evaluate import evaluate

from .filter_scene import PORTS, V4, V6
from .harness import Netns, run_collector
from .netns_socket import in_netns
from .ss_line import Key, parse_text, record_key

pytestmark = pytest.mark.root
SCENE = Path(__file__).with_name("filter_scene.py")


@dataclass
class Scene:
    ns: Netns
    sock: DiagSocket
    loop: asyncio.AbstractEventLoop

    def dump(self, bytecode: bytes = b"", states: int = c.ALL_STATES_MASK) -> SocketBatch:
        """Both families, ``states`` (default: every state ss -a lists), ``bytecode`` attached."""
        chunks: list[bytes] = []

        async def run() -> None:
            for fam in (c.AF_INET, c.AF_INET6):
                async for ch in self.sock.dump(fam, states=states, ext=c.EXT_ALL, timeout_s=10.0,
                                               bytecode=bytecode):
                    chunks.append(ch.data)

        self.loop.run_until_complete(run())
        return decode_messages(chunks).batch

    def ours(self, expr: str, states: int = c.ALL_STATES_MASK) -> set[Key]:
        return keys(self.dump(compile_filter(parse(expr)) if expr.strip() else b"", states))

    def ss(self, *args: str) -> set[Key]:
        return {s.key for s in parse_text(self.ns.run(["ss", "-tanH", *args]))}

    def bracketed(self, expr: str, *others: Callable[[], set[Key]], states: int = c.ALL_STATES_MASK) -> set[Key]:
        """Our sockets for ``expr``, with each of ``others`` (ss, the CLI...) read between two reads of ours.

        The scene keeps making TIME-WAIT sockets and the old ones expire, so a socket may come or
        go between two reads: every other list must hold each socket both our reads have, and
        nothing that neither has. With nothing in flux that is equality.
        """
        before = self.ours(expr, states)
        theirs = [other() for other in others]
        after = self.ours(expr, states)
        for t in theirs:
            assert before & after <= t, f"missing {sorted((before & after) - t)} for {expr!r}"
            assert t <= before | after, f"extra {sorted(t - (before | after))} for {expr!r}"
        return before & after

    def agree(self, expr: str) -> set[Key]:
        """Our sockets for ``expr``, which ss -tanH EXPR lists too (see bracketed)."""
        return self.bracketed(expr, lambda: self.ss(expr))

    def check_evaluator(self, expr: str) -> None:
        """The column evaluator picks, from a full dump, the sockets the kernel's program keeps."""
        everything = self.dump()
        kernel = self.ours(expr)
        stable = keys(everything) & keys(self.dump())
        mask = evaluate(parse(expr), everything).tolist()
        picked = {k for k, m in zip(map(record_key, everything.to_records()), mask, strict=True) if m}
        assert picked & stable == kernel & stable, expr


def keys(batch: SocketBatch) -> set[Key]:
    return set(map(record_key, batch.to_records()))


@pytest.fixture(scope="module")
def scene(netns: Netns) -> Iterator[Scene]:
    """The scene program running in a fresh namespace, and a sock_diag socket inside it."""
    for addr in ("10.7.0.1/32", "10.7.1.9/32"):
        netns.run(["ip", "addr", "add", addr, "dev", "lo"])
    for addr in ("fd00:7::1/128", "fd00:7::2:1/128"):
        netns.run(["ip", "addr", "add", addr, "dev", "lo", "nodad"])
    proc = netns.popen([sys.executable, SCENE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30.0)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("READY"):
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        pytest.fail(f"scene program did not start: {line!r} {err}")
    time.sleep(0.2)  # the last ACKs settle
    sock = DiagSocket()
    in_netns(netns.name, sock.open)
    loop = asyncio.new_event_loop()
    try:
        yield Scene(netns, sock, loop)
    finally:
        sock.close()
        loop.close()
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=10)


HAND_WRITTEN = [
    "sport = :22", "sport == :80", "sport eq :443", "dport = :1024", "dport = 5000", "sport :8080",
    "sport != :22", "sport neq :80", "dport ne :443", "sport > :1000", "sport gt :1000", "sport < :1000",
    "sport lt :443", "sport >= :1024", "sport ge :1024", "sport <= :1024", "sport le :80", "dport >= :9000",
    "dport geq :5000", "sport leq :443",
    "src 127.0.0.1", "src 127.0.0.2", "dst 127.0.0.0/8", "src 10.7.0.0/16", "dst 10.7.1.9/32",
    "src 10.7.0.0/23", "src 0.0.0.0/0", "dst 0.0.0.0", "src [::1]", "dst fd00:7::/32",
    "src [fd00:7::2:1]", "dst ::/0", "src [::ffff:127.0.0.1]", "src [::ffff:127.0.0.0/104]",
    "src 127.0.0.1:22", "dst 127.0.0.1:9000", "src [::1]:80", "src [fd00:7::1]:9000", "src *:443", "dst *:9000",
    "src *", "dst *:*", "sport = :*", "src = 127.0.0.2", "src == 10.7.0.1",
    "sport = :22 or sport = :443", "sport = :22 || dport = :22", "sport = :80 and dst 127.0.0.1",
    "sport = :80 && dst 127.0.0.2", "sport >= :1000 sport <= :5000", "not sport = :22", "! dport = :80",
    "not ( sport = :22 or dport = :22 )", "( sport = :443 or sport = :80 ) and src 10.7.0.0/16",
    "sport = :443 or sport = :80 and src 10.7.0.0/16", "sport = :443 or ( sport = :80 and src 10.7.0.0/16 )",
    "not not sport = :1024", "not src 127.0.0.0/8 and not src [::1]", "dst 127.0.0.1 or dst [::1] or dst 10.7.0.1",
    "( src 127.0.0.1 or src 127.0.0.2 ) ( dport > :1024 or sport < :1024 )", "sport = :ssh", "dport = :https",
    "fwmark = 0", "fwmark = 0x1/0x1", "fwmark != 0x0/0xff", "dev lo", "not dev lo", "autobound",
    "not autobound and sport > :1000",
]


def test_the_hand_written_table_is_big_enough() -> None:
    """The table covers at least 40 expressions."""
    assert len(HAND_WRITTEN) >= 40


def test_the_scene_has_listeners_connections_time_wait_and_both_families(scene: Scene) -> None:
    """The unfiltered dump has what the expressions are meant to tell apart."""
    everything = scene.dump()
    states = set(everything.columns["inet_diag_msg_state"].tolist())
    assert {c.TCP_STATES["listen"], c.TCP_STATES["established"], c.TCP_STATES["time-wait"]} <= states
    assert set(everything.columns["inet_diag_msg_family"].tolist()) == {c.AF_INET, c.AF_INET6}
    assert everything.n >= 60
    scene.bracketed("", scene.ss)


@pytest.mark.parametrize("expr", HAND_WRITTEN)
def test_hand_written_expression_lists_what_ss_lists(scene: Scene, expr: str) -> None:
    """The kernel-filtered dump and ss list the same sockets for this expression, and so does the
    column evaluator on a full dump (except for autobound, which records cannot show)."""
    scene.agree(expr)
    if "autobound" not in expr:
        scene.check_evaluator(expr)


@pytest.mark.parametrize(("ours", "theirs"), [("src != 127.0.0.1", "not src 127.0.0.1"),
                                              ("dst != [::1]", "not dst [::1]")])
def test_address_inequality_is_the_negation_ss_spells_out(scene: Scene, ours: str, theirs: str) -> None:
    """`src != X` (which ss 6.1 refuses as a syntax error) lists what ss lists for `not src X`."""
    scene.bracketed(ours, lambda: scene.ss(theirs))


# --- random trees of the grammar ----------------------------------------------------------------------

_ports = st.sampled_from([*PORTS, 9000, 0, 1, 999, 1023, 1025, 65535]) | st.integers(0, 65535)
_port_ops = st.sampled_from(["=", "==", "eq", "!=", "neq", ">", "gt", "<", "lt", ">=", "ge", "<=", "le"])
_v4 = st.sampled_from([*V4, "127.0.0.0", "10.7.0.0", "0.0.0.0"])
_v6 = st.sampled_from([*V6, "fd00:7::", "::", "::ffff:127.0.0.1", "::ffff:10.7.0.1"])
#: Bare IPv6 is refused by ss and by us: brackets always.


@st.composite
def _host(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return f"*:{draw(_ports)}"
    if kind in (1, 2):
        addr = draw(_v4)
        text = addr + (f"/{draw(st.integers(0, 32))}" if draw(st.booleans()) else "")
        return text + (f":{draw(_ports)}" if draw(st.booleans()) else "")
    addr = draw(_v6)
    plen = f"/{draw(st.integers(0, 128))}" if draw(st.booleans()) else ""
    if draw(st.booleans()):
        return f"[{addr}{plen}]:{draw(_ports)}"
    return f"[{addr}{plen}]"


@st.composite
def _leaf(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return f"{draw(st.sampled_from(['sport', 'dport']))} {draw(_port_ops)} :{draw(_ports)}"
    op = draw(st.sampled_from(["", "= ", "== "]))
    return f"{draw(st.sampled_from(['src', 'dst']))} {op}{draw(_host())}"


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    joiners = st.sampled_from(["and", "&&", "&", "or", "||", "|", ""])
    binary = st.tuples(children, joiners, children, st.booleans()).map(
        lambda t: f"( {t[0]} {t[1]} {t[2]} )" if t[3] else f"{t[0]} {t[1]} {t[2]}".replace("  ", " "))
    negated = st.tuples(st.sampled_from(["not", "!"]), children).map(lambda t: f"{t[0]} {t[1]}")
    return binary | negated


EXPRESSIONS = st.recursive(_leaf(), _combine, max_leaves=8)


@pytest.mark.timeout(600)
@settings(max_examples=520, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(expr=EXPRESSIONS)
def test_random_expression_lists_what_ss_lists(scene: Scene, expr: str) -> None:
    """For random trees of the grammar, the kernel-filtered dump and ss list the same sockets,
    and the column evaluator (used by per-class sampling) picks the same rows from a full dump."""
    scene.agree(expr)
    scene.check_evaluator(expr)


def _cli(scene: Scene, out: Path, *args: str) -> Callable[[], set[Key]]:
    return lambda: set(map(record_key, run_collector(scene.ns, out, "--once", *args)))


@pytest.mark.parametrize("expr", ["sport = :443 or dport = :443", "not src 127.0.0.0/8", "dst [fd00:7::1]:9000"])
def test_cli_filter_once_lists_what_ss_lists(scene: Scene, tmp_path: Path, expr: str) -> None:
    """End to end: `xtcp-async --filter EXPR --once` writes records for exactly ss's sockets."""
    got = scene.bracketed(expr, _cli(scene, tmp_path / "out.jsonl", "--filter", expr), lambda: scene.ss(expr))
    assert got


def test_cli_exclude_port_is_the_filter_it_stands_for(scene: Scene, tmp_path: Path) -> None:
    """--exclude-port 22,9000 lists what ss lists for `not ( sport = :22 or dport = :22 or ... )`."""
    expr = "not ( sport = :22 or dport = :22 or sport = :9000 or dport = :9000 )"
    got = scene.bracketed(expr, _cli(scene, tmp_path / "out.jsonl", "--exclude-port", "22,9000"),
                          lambda: scene.ss(expr))
    assert got and not {k for k in got if 22 in (k[2], k[4]) or 9000 in (k[2], k[4])}


def test_cli_states_exclusion_matches_ss_state_filter(scene: Scene, tmp_path: Path) -> None:
    """--states all,-time-wait lists what `ss -tanH exclude time-wait` lists."""
    mask = c.ALL_STATES_MASK & ~(1 << c.TCP_STATES["time-wait"])
    got = scene.bracketed("", _cli(scene, tmp_path / "out.jsonl", "--states", "all,-time-wait"),
                          lambda: scene.ss("exclude", "time-wait"), states=mask)
    assert got and c.TCP_STATES["time-wait"] not in {k[0] for k in got}


def test_cli_refused_program_is_a_start_up_error(scene: Scene) -> None:
    """A bad expression exits 2 with one line naming the token, before any poll."""
    proc = subprocess.run(scene.ns.argv([*_collector(), "--once", "--filter", "sport = :nosuchport"]),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "':nosuchport'" in proc.stderr
    assert proc.stdout == ""


def _collector() -> list[str]:
    from .harness import collector_argv

    return [str(a) for a in collector_argv()]


def test_cli_filter_sample_and_change_only_compose(scene: Scene, tmp_path: Path) -> None:
    """--states, --filter, --sample 0.5 and --emit changed together: poll 1 sends exactly the filtered
    sockets whose cookie hash falls in the sample, each marked 500000 ppm; poll 2 of the quiescent
    scene sends nothing."""
    import numpy as np

    from xtcp_async.stages.sample import keep_mask

    expr = "not ( sport = :7000 or dport = :7000 )"  # leave out the TIME-WAIT refresher's churn
    states = c.ALL_STATES_MASK & ~(1 << c.TCP_STATES["time-wait"])
    filtered = scene.dump(compile_filter(parse(expr)), states)
    cookies = filtered.columns["inet_diag_msg_socket_cookie"].astype(np.uint64)
    kept = keep_mask(cookies, np.full(filtered.n, 500_000)).tolist()
    expected = {k for k, keep in zip(map(record_key, filtered.to_records()), kept, strict=True) if keep}
    assert 0 < len(expected) < filtered.n

    records = run_collector(scene.ns, tmp_path / "out.jsonl", "--count", "2", "--interval", "1", "--filter", expr,
                            "--states=all,-time-wait", "--sample", "0.5", "--emit", "changed")
    first = [r for r in records if r["poll_id"] == 1]
    assert {record_key(r) for r in first} == expected
    assert {r["sample_rate_ppm"] for r in first} == {500_000}
    assert [r for r in records if r["poll_id"] == 2] == []
