"""The four controls come from flags, XTCP_* variables and the config file alike (README table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xtcp_async.cli import _flags, build_parser
from xtcp_async.config import Config, load_config

FLAGS = ["--filter", "dport = :443", "--exclude-port", "22,9088", "--states", "all,-time-wait",
         "--sample", "dport = :443=0.01", "--sample", "*=0.1", "--emit", "changed", "--heartbeat", "60"]
ENV = {"XTCP_FILTER": "dport = :443", "XTCP_EXCLUDE_PORT": "22,9088", "XTCP_STATES": "all,-time-wait",
       "XTCP_SAMPLE": "dport = :443=0.01;*=0.1", "XTCP_EMIT": "changed", "XTCP_HEARTBEAT": "60"}
TOML = '''
filter = "dport = :443"
exclude_port = [22, 9088]
states = ["all", "-time-wait"]
sample = ["dport = :443=0.01", "*=0.1"]
emit = "changed"
heartbeat = 60
'''


def _what(cfg: Config) -> tuple[object, ...]:
    return cfg.poll.bytecode, cfg.poll.states_mask, cfg.stages


def test_flags_environment_and_file_give_the_same_controls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One configuration three ways: same program, states, sample classes and emit mode."""
    flags, _ = _flags(build_parser().parse_args(FLAGS))
    from_flags = load_config(flags)
    path = tmp_path / "xtcp.toml"
    path.write_text(TOML)
    from_file = load_config({}, str(path))
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    from_env = load_config({})
    assert _what(from_flags) == _what(from_env) == _what(from_file)
    assert from_flags.stages.emit == "changed" and from_flags.stages.heartbeat == 60
    assert [c.rate_ppm for c in from_flags.stages.samples] == [10_000, 100_000]


def test_controls_are_in_the_help() -> None:
    """--help lists every control."""
    text = build_parser().format_help()
    for flag in ("--filter", "--exclude-port", "--sample", "--emit", "--heartbeat", "--emit-fields"):
        assert flag in text
