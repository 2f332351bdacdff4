"""The filter parser and bytecode compiler: syntax errors name the token, jumps follow the tree."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xtcp_async.config import load_config
from xtcp_async.errors import ConfigError
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.filter_ast import And, Expr, FilterSyntaxError, Not, Or, PortCmp, parse
from xtcp_async.netlink.filter_bytecode import BC_S_EQ, compile_filter, run_program
from xtcp_async.netlink.request import states_mask


@pytest.mark.parametrize(("text", "token"), [("sport = :nope", ":nope"), ("sport >", "port"),
                                             ("src 300.1.2.3", "300.1.2.3"),
                                             ("dport = :22 banana", "banana"), ("( sport = :1", "')'"),
                                             ("src [::1", "[::1"), ("src 10.0.0.0/33", "10.0.0.0/33"),
                                             ("src ::1", "::1"), ("src >= 1.2.3.4", ">=")])
def test_a_bad_expression_names_the_offending_token(text: str, token: str) -> None:
    """FilterSyntaxError's message quotes the token that does not fit."""
    with pytest.raises(FilterSyntaxError) as exc:
        parse(text)
    assert token in str(exc.value)


def test_and_and_or_have_equal_precedence_left_to_right_as_in_ss() -> None:
    """`a or b and c` is `(a or b) and c` (ss 6.1's grammar)."""
    a, b, cc = (PortCmp("src", "eq", p) for p in (1, 2, 3))
    assert parse("sport = :1 or sport = :2 and sport = :3") == And(Or(a, b), cc)
    assert parse("not sport = :1 sport = :2") == And(Not(a), b)


_leaves = st.integers(1, 6).map(lambda p: PortCmp("src", "eq", p))
_trees: st.SearchStrategy[Expr] = st.recursive(
    _leaves, lambda ch: st.builds(And, ch, ch) | st.builds(Or, ch, ch) | st.builds(Not, ch), max_leaves=12)


def _truth(e: Expr, port: int) -> bool:
    if isinstance(e, PortCmp):
        return port == e.port
    if isinstance(e, Not):
        return not _truth(e.expr, port)
    if isinstance(e, And):
        return _truth(e.left, port) and _truth(e.right, port)
    assert isinstance(e, Or)
    return _truth(e.left, port) or _truth(e.right, port)


@settings(max_examples=300, deadline=None)
@given(tree=_trees)
def test_the_program_accepts_exactly_where_the_tree_is_true(tree: Expr) -> None:
    """Walking the compiled jumps as the kernel does gives the tree's truth value for every port."""
    prog = compile_filter(tree)
    for port in range(0, 8):
        def test(code: int, operand: bytes, port: int = port) -> bool:
            assert code == BC_S_EQ
            return port == struct.unpack_from("<BBH", operand)[2]
        assert run_program(prog, test) == _truth(tree, port)


def test_state_groups_and_exclusions_follow_ss() -> None:
    """connected excludes listen/close/time-wait/syn-recv; `all,-time-wait` drops only time-wait."""
    bit = {k: 1 << v for k, v in c.TCP_STATES.items()}
    assert states_mask(["all", "-time-wait"]) == c.ALL_STATES_MASK & ~bit["time-wait"]
    conn = states_mask(["connected"])
    assert conn & bit["established"] and not conn & (bit["listen"] | bit["time-wait"] | bit["syn-recv"])
    assert states_mask(["synchronized"]) == conn & ~bit["syn-sent"]
    assert states_mask(["bucket"]) == bit["syn-recv"] | bit["new-syn-recv"] | bit["time-wait"]
    assert states_mask(["-listen"]) == c.ALL_STATES_MASK & ~bit["listen"]


def test_exclude_port_compiles_into_the_filter_program() -> None:
    """--exclude-port alone gives a program; with --filter both are in one program."""
    only = load_config({"exclude_port": "22"}).poll.bytecode
    both = load_config({"exclude_port": "22", "filter": "dport = :443"}).poll.bytecode
    assert only and len(both) > len(only)
    assert load_config({}).poll.bytecode == b""


def test_bad_filter_flag_is_a_config_error_naming_the_flag_and_token() -> None:
    """A bad --filter is one ConfigError line naming --filter and the token."""
    with pytest.raises(ConfigError) as exc:
        load_config({"filter": "sport = :22 or frobnicate"})
    msg = str(exc.value)
    assert "--filter" in msg and "'frobnicate'" in msg and "\n" not in msg
