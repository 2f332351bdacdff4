"""``--netns`` accepts self, all, or namespace names; anything else is one config line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xtcp_async.config import load_config
from xtcp_async.netns.select import NetnsSelection, parse_netns_selection


@pytest.mark.parametrize(("values", "expected"), [
    (["self"], NetnsSelection("self")),
    (["all"], NetnsSelection("all")),
    (["blue", "red", "blue"], NetnsSelection("named", ("blue", "red"))),
    (["self", "blue"], NetnsSelection("named", ("blue",), include_self=True)),
])
def test_valid_selections(values: list[str], expected: NetnsSelection) -> None:
    """self and all stand alone; names are deduplicated in order and may include self."""
    assert parse_netns_selection(values) == expected


@pytest.mark.parametrize("values", [["all", "blue"], [""], ["a/b"], [".."], ["x" * 256]])
def test_invalid_selections(values: list[str]) -> None:
    """all with anything else, empty, path-like or overlong names are rejected."""
    with pytest.raises(ValueError, match=r"."):
        parse_netns_selection(values)


def test_flag_env_and_file_reach_the_poll_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--netns, XTCP_NETNS and the netns key all set the poller's selection (flag > env > file)."""
    for name in [n for n in os.environ if n.startswith("XTCP_")]:
        monkeypatch.delenv(name)
    cfg_file = tmp_path / "x.toml"
    cfg_file.write_text('netns = "all"\nnetns_rescan = 30\n')
    assert load_config({}, str(cfg_file)).poll.netns == NetnsSelection("all")
    assert load_config({}, str(cfg_file)).poll.netns_rescan_s == 30
    monkeypatch.setenv("XTCP_NETNS", "blue,green")
    assert load_config({}, str(cfg_file)).poll.netns == NetnsSelection("named", ("blue", "green"))
    assert load_config({"netns": "self"}, str(cfg_file)).poll.netns.only_self
    assert load_config({}).poll.netns.names == ("blue", "green")  # without the file: still the env's
    monkeypatch.delenv("XTCP_NETNS")
    assert load_config({}).poll.netns.only_self


@pytest.mark.parametrize(("args", "env"), [
    (["--netns", "all,blue"], {}),
    (["--netns", "../etc"], {}),
    ([], {"XTCP_NETNS": "all self"}),
    (["--netns-rescan", "0"], {}),
])
def test_bad_netns_values_print_one_line_and_exit_2(args: list[str], env: dict[str, str]) -> None:
    """A bad --netns / XTCP_NETNS / --netns-rescan is one line naming the field, exit code 2."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("XTCP_")} | env
    proc = subprocess.run([sys.executable, "-m", "xtcp_async", *args], capture_output=True, text=True,
                          env=full_env, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "--netns" in lines[0]
