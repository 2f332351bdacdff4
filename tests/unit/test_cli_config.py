"""Configuration: file < environment < flags; every bad value is one line naming the field, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from xtcp_async.cli import main
from xtcp_async.config import load_config


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("XTCP_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "xtcp_async", *args], capture_output=True, text=True,
                          env=full_env, timeout=60, check=False)


@pytest.mark.parametrize(("args", "field"), [
    (["--sink", "gopher://x"], "gopher"),
    (["--interval", "-1"], "--interval"),
    (["--interval", "2", "--poll-timeout", "5"], "--interval"),
    (["--format", "xml"], "--format"),
    (["--states", "nosuchstate"], "--states"),
    (["--family", "inet7"], "--family"),
    (["--config", "/nonexistent/xtcp.toml"], "config file"),
    (["--max-batch-rows", "0"], "--max-batch-rows"),
    (["--sink", "udp://127.0.0.1:9?format=csv"], "format"),
    (["--sink", "kafka://u:p@127.0.0.1:9092/t"], "credentials"),
])
def test_bad_values_print_one_line_and_exit_2(args: list[str], field: str) -> None:
    """Each bad value prints exactly one line that names the field, and the exit code is 2."""
    proc = _run(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert field in lines[0]


def test_unknown_scheme_lists_valid_ones() -> None:
    """An unknown sink scheme names the schemes that exist."""
    proc = _run("--sink", "gopher://x")
    assert "allowed:" in proc.stderr and "udp" in proc.stderr and "kafka" in proc.stderr


def test_file_env_flags_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flag beats XTCP_* which beats the TOML file; untouched values keep their defaults."""
    cfg_file = tmp_path / "x.toml"
    cfg_file.write_text('interval = 30\nlocation = "ams1"\nlabel = "file"\nsink = ["null://"]\n')
    monkeypatch.setenv("XTCP_LABEL", "env")
    monkeypatch.setenv("XTCP_INTERVAL", "20")
    cfg = load_config({"interval": 15.0}, str(cfg_file))
    s = cfg.settings
    assert (s.interval, s.label, s.location, cfg.poll.poll_timeout_s) == (15.0, "env", "ams1", 5.0)
    assert [sc.spec.scheme for sc in cfg.sinks] == ["null"]


def test_config_file_sink_tables_carry_options(tmp_path: Path) -> None:
    """A [[sink]] table in the file gives a URL plus options, as a URL query would."""
    cfg_file = tmp_path / "x.toml"
    cfg_file.write_text('[[sink]]\nurl = "udp://127.0.0.1:9000"\nmax_datagram = "1200"\nformat = "jsonl"\n')
    cfg = load_config({}, str(cfg_file))
    assert cfg.sinks[0].spec.options == {"max_datagram": "1200"} and cfg.sinks[0].format == "jsonl"


def test_env_sink_list_splits_on_whitespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """XTCP_SINK holds several URLs separated by spaces (URLs may contain commas)."""
    monkeypatch.setenv("XTCP_SINK", "kafka://a:1,b:2/t null://")
    cfg = load_config({})
    assert [sc.spec.hosts for sc in cfg.sinks] == [(("a", 1), ("b", 2)), ()]


def test_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    """--help lists each option the issue names."""
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for opt in ("--config", "--sink", "--format", "--interval", "--jitter", "--count", "--once", "--family",
                "--states", "--poll-timeout", "--hostname", "--location", "--label", "--tag",
                "--max-batch-rows", "--max-batch-bytes", "--log-level", "--loop"):
        assert opt in out, opt


def test_once_writes_file_and_exits_0(tmp_path: Path) -> None:
    """--once with a file sink writes JSON lines of this namespace's sockets and exits 0."""
    out = tmp_path / "r.jsonl"
    proc = _run("--once", "--sink", f"file://{out}?format=jsonl", "--metrics-listen", "", "--loop", "asyncio")
    assert proc.returncode == 0, proc.stderr
    import json

    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(r["poll_id"] == 1 and r["schema_version"] == 1 for r in lines)


def test_short_interval_alone_shortens_the_default_poll_timeout() -> None:
    """--interval 2 without --poll-timeout is valid: the timeout defaults to 80% of the interval."""
    cfg = load_config({"interval": 2.0})
    assert cfg.poll.poll_timeout_s == 1.6
    assert load_config({}).poll.poll_timeout_s == 5.0
