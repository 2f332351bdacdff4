"""Bad input, tried as a new user would: one line naming the field, exit 2, no secret echoed, never a hang."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xtcp_async.cli import main

SECRET = "hunter2"


def _exit_code_and_err(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("XTCP_"):
            monkeypatch.delenv(key)


@pytest.mark.parametrize(("argv", "names"), [
    (["--interval", "inf"], "--interval"),
    (["--interval", "1e308"], "--interval"),
    (["--interval", "nan"], "--interval"),
    (["--poll-timeout", "inf", "--once"], "--poll-timeout"),
    (["--shutdown-grace", "inf"], "--shutdown-grace"),
    (["--family", ""], "--family"),
    (["--family", ","], "--family"),
    (["--states", ""], "--states"),
    (["--metrics-listen", "127.0.0.1:86537"], "--metrics-listen"),
    (["--metrics-listen", "127.0.0.1:0"], "--metrics-listen"),
    (["--metrics-listen", "no-such-host.invalid:9088"], "--metrics-listen"),
    (["--metrics-listen", "garbage"], "--metrics-listen"),
    (["--sink", "udp://[::1:9000"], "udp://[::1:9000"),
    (["--sink", "udp://127.0.0.1:9000?buffer_bytes=-1"], "buffer_bytes"),
    (["--sink", "null://?buffer_bytes=0"], "buffer_bytes"),
    (["--sink", "file://relative/path.jsonl"], "file:///"),
    (["--stats-json", "/nonexistent-dir/stats.json"], "--stats-json"),
])
def test_bad_value_is_one_line_naming_the_field_and_exit_2(
        argv: list[str], names: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Each of these once hung, printed a traceback, or was silently taken; now: one line, exit 2."""
    code, err = _exit_code_and_err(argv, capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], err


def test_stats_json_naming_a_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--stats-json pointing at a directory is found at start-up, not at exit when the counters would be lost."""
    code, err = _exit_code_and_err(["--stats-json", str(tmp_path)], capsys)
    assert code == 2 and "--stats-json" in err and "directory" in err


def test_file_sink_on_a_directory_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file sink whose path is a directory exits 2 at start-up, naming the path."""
    code, err = _exit_code_and_err(["--sink", f"file://{tmp_path}"], capsys)
    assert code == 2 and "is a directory" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage\x00\x01",
                                     "interval = 5\nlocation = \"caf\xe9\"\n".encode("latin-1")])
def test_config_file_that_is_not_utf8_is_one_line(
        content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A binary or non-UTF-8 config file is a one-line error naming the file, exit 2."""
    path = tmp_path / "x.toml"
    path.write_bytes(content)
    code, err = _exit_code_and_err(["--config", str(path)], capsys)
    assert code == 2 and str(path) in err and len(err.strip().splitlines()) == 1


def test_an_interval_of_inf_in_a_config_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`interval = inf` in TOML is refused like the flag."""
    path = tmp_path / "x.toml"
    path.write_text("interval = inf\n")
    code, err = _exit_code_and_err(["--config", str(path)], capsys)
    assert code == 2 and "--interval" in err


@pytest.mark.parametrize(("env", "value", "names"), [
    ("XTCP_SINK", "", "--sink"),
    ("XTCP_STATES", ",,,", "--states"),
    ("XTCP_SINK", "udp://[::1:9000", "udp://[::1:9000"),
])
def test_bad_environment_values_are_one_line(env: str, value: str, names: str, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The same checks hold for XTCP_* variables."""
    monkeypatch.setenv(env, value)
    code, err = _exit_code_and_err([], capsys)
    assert code == 2 and names in err and len(err.strip().splitlines()) == 1


def test_empty_sink_list_in_a_config_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sink = []` would poll into nothing: refused."""
    path = tmp_path / "x.toml"
    path.write_text("sink = []\n")
    code, err = _exit_code_and_err(["--config", str(path)], capsys)
    assert code == 2 and "--sink" in err


def test_misspelled_environment_variable_is_warned_about_with_the_closest_option(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """XTCP_INTREVAL is not silently ignored: a warning names XTCP_INTERVAL (the run itself goes on)."""
    from xtcp_async.config import load_config

    monkeypatch.setenv("XTCP_INTREVAL", "5")
    load_config({"once": True, "sink": ["null://"]})
    err = capsys.readouterr().err
    assert "XTCP_INTREVAL is not an option" in err and "did you mean XTCP_INTERVAL?" in err


@pytest.mark.parametrize("argv", [
    ["--sink", f"kafka://user:{SECRET}@127.0.0.1:9092/t"],
    ["--sink", f"kafka://127.0.0.1:99999/t?sasl_password={SECRET}"],
    ["--sink", f"kafka://127.0.0.1:9092/t?sasl_password={SECRET}"],
    ["--sink", f"nsq://127.0.0.1:4150/t?auth_secret={SECRET}"],
    ["--sink", f"udp://[::1:9000?token={SECRET}"],
])
def test_errors_about_a_sink_url_never_echo_its_secrets(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Whatever is wrong with a URL that carries a password, the message does not show the password."""
    code, err = _exit_code_and_err(argv, capsys)
    assert code == 2 and SECRET not in err and err.strip()


@pytest.mark.parametrize("option", ["auth_secret_file", "ca_file"])
def test_nsq_file_options_are_checked_at_start_up(option: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """An NSQ sink naming a missing secret or CA file exits 2 at once, naming the option (it used to hang)."""
    tls = "&tls=true" if option == "ca_file" else ""
    code, err = _exit_code_and_err(["--once", "--sink", f"nsq://127.0.0.1:4150/t?{option}={tmp_path}/missing{tls}"],
                                   capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "nsq" in err and option in err
