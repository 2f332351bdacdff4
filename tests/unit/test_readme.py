"""The README's examples are accepted by the real CLI parser and config loader."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from xtcp_async.cli import _flags, build_parser
from xtcp_async.config import load_config
from xtcp_async.service import build_sinks

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def _commands() -> list[list[str]]:
    cmds = []
    for block in _blocks("sh"):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip() if not line.strip().startswith("xtcp-async") else line
            if line.strip().startswith("xtcp-async "):
                cmds.append(shlex.split(line.split(" #", 1)[0])[1:])
    return cmds


def test_every_command_example_is_valid() -> None:
    """Each `xtcp-async ...` line in the README parses, validates and builds its sinks."""
    cmds = _commands()
    assert len(cmds) >= 3
    for argv in cmds:
        flags, config_file = _flags(build_parser().parse_args(argv))
        build_sinks(load_config(flags, config_file))


def test_config_file_example_is_valid(tmp_path: Path) -> None:
    """The README's TOML example loads into a valid configuration."""
    (block,) = _blocks("toml")
    path = tmp_path / "xtcp.toml"
    path.write_text(block)
    password = Path("/etc/xtcp/kafka-password")
    cfg = load_config({}, str(path))
    assert cfg.settings.location == "ams1"
    assert cfg.sinks[0].spec.options["compression"] == "lz4"
    assert not password.exists() or password.is_file()
