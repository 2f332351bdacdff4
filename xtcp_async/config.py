"""Configuration: built once at the edge from a TOML file < XTCP_* environment < CLI flags,
validated by pydantic, frozen. Each component gets its own slice.

Why a plain pydantic model and not pydantic-settings' ``BaseSettings``: importing pydantic-settings
(dotenv, secrets, CLI and cloud sources) cost ~26 ms CPU at every start (issue 13), for the one
thing used here: reading ``XTCP_<NAME>``. :func:`env_values` does that with the same rules (names
case-insensitive, values passed to pydantic as the raw strings, as ``NoDecode`` did).

Field names are the long flag names (``--poll-timeout`` → ``poll_timeout``, env
``XTCP_POLL_TIMEOUT``, TOML ``poll_timeout``) because the issue fixes those names for users;
their units are in the help text and in the slices' names (``interval_s``).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from xtcp_async import __version__
from xtcp_async.errors import ConfigError
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.request import STATE_GROUPS, states_mask
from xtcp_async.netns.select import NetnsSelection, parse_netns_selection
from xtcp_async.sinks.base import FORMATS
from xtcp_async.sinks.spec import SinkSpec, parse_sink_url
from xtcp_async.stages.spec import (
    DEFAULT_EMIT_FIELDS,
    StageSettings,
    check_emit_fields,
    kernel_bytecode,
    parse_sample,
)

Format = Literal["jsonl", "protobuf-list", "protobuf-single"]
#: What --aggregate-by may group on (issue 12); xtcp_async.aggregate.keys builds each.
AggregateKey = Literal["location", "hostname", "netns", "asn", "prefix", "port", "cc", "state"]

#: The longest interval, timeout or grace accepted: one day.
MAX_SECONDS = 86_400.0


def _split_list(value: Any) -> Any:
    """Accept "a,b" or "a b" from env/flags as a list; lists pass through."""
    if isinstance(value, str):
        return [v for v in value.replace(",", " ").split() if v]
    return value


class Settings(BaseModel):
    """Every option of the service (see `xtcp-async --help`)."""

    # validate_default: defaults go through the validators too (BaseSettings did so), e.g. the
    # default --metrics-listen is checked to be listenable.
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, validate_default=True)

    sink: list[str | dict[str, str]] = Field(
        default_factory=lambda: list[str | dict[str, str]](["stdout://"]), min_length=1)
    format: Format | None = None
    # Time values are finite and at most a day: `--interval inf` would never poll again, and a
    # deadline of 1e308 s overflows the event loop's clock arithmetic (it hung, not failed).
    interval: float = Field(default=10.0, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    jitter: float = Field(default=0.0, ge=0, lt=1, allow_inf_nan=False)
    count: int | None = Field(default=None, ge=1)
    once: bool = False
    family: list[Literal["inet", "inet6"]] = Field(
        default_factory=lambda: list[Literal["inet", "inet6"]](["inet", "inet6"]), min_length=1)
    states: list[str] = Field(default_factory=lambda: ["all"], min_length=1)
    #: None: 5 s, or 80% of --interval when that is shorter (so `--interval 2` alone is valid).
    poll_timeout: float | None = Field(default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    hostname: str = Field(default_factory=socket.gethostname)
    location: str = ""
    label: str = ""
    tag: str = ""
    max_batch_rows: int = Field(default=10_000, ge=1)
    max_batch_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    shutdown_grace: float = Field(default=10.0, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    metrics_listen: str = "127.0.0.1:9088"
    stats_json: str | None = None
    # -- issue 10: network namespaces (see xtcp_async/netns/) ------------------------------------
    #: "self", "all", or named namespaces (``ip netns`` names).
    netns: list[str] = Field(default_factory=lambda: ["self"])
    #: Seconds between namespace rediscoveries; None: before every poll.
    netns_rescan: float | None = Field(default=None, gt=0)

    @field_validator("netns")
    @classmethod
    def _netns(cls, v: list[str]) -> list[str]:
        parse_netns_selection(v)  # ValueError names what is wrong
        return v

    # --- TCP health (issue 12): enrichment, aggregate records, /metrics series -------------------
    asn_db: str | None = None
    prefix_len: tuple[int, int] | None = None
    aggregate: bool = False
    aggregate_by: list[AggregateKey] = Field(
        default_factory=lambda: list[AggregateKey](["asn"]))
    aggregate_max_groups: int = Field(default=1000, ge=1)
    metrics_ports: int = Field(default=20, ge=0)

    @field_validator("prefix_len", mode="before")
    @classmethod
    def _prefix_len(cls, v: Any) -> Any:
        v = _split_list(v)
        if isinstance(v, list):
            if len(v) != 2 or not all(str(x).isdigit() for x in v):
                raise ValueError("expected two prefix lengths, IPv4,IPv6 (e.g. 24,48)")
            v4, v6 = int(v[0]), int(v[1])
            if not (0 <= v4 <= 32 and 0 <= v6 <= 128):
                raise ValueError("the IPv4 length must be 0..32 and the IPv6 length 0..128")
            return (v4, v6)
        return v

    @model_validator(mode="after")
    def _aggregate_keys_have_data(self) -> Settings:
        if self.aggregate and "asn" in self.aggregate_by and not self.asn_db:
            raise ValueError("--aggregate-by asn needs --asn-db (a prefix → ASN database)")
        if self.aggregate and self.emit == "changed":
            # Aggregates are computed on the rows the encoder gets: only the changed ones then.
            raise ValueError("--aggregate cannot be combined with --emit changed (it would see only changed rows)")
        return self
    # --- end TCP health ----------------------------------------------------------------------------
    # --- what to send (issue 11): kernel filter, exclusions, sampling, change-only ---------------
    filter: str | None = None
    exclude_port: list[int] = Field(default_factory=list)
    sample: list[str] = Field(default_factory=list)
    emit: Literal["all", "changed"] = "all"
    heartbeat: int = Field(default=0, ge=0)
    emit_fields: list[str] = Field(default_factory=lambda: list(DEFAULT_EMIT_FIELDS))

    @field_validator("sample", mode="before")
    @classmethod
    def _samples(cls, v: Any) -> Any:
        # Expressions hold spaces and commas: from the environment, classes are split on ';'.
        return [x for x in v.split(";") if x.strip()] if isinstance(v, str) else v

    @field_validator("filter")
    @classmethod
    def _filter(cls, v: str | None) -> str | None:
        kernel_bytecode(v, [])
        return v

    @field_validator("exclude_port")
    @classmethod
    def _ports(cls, v: list[int]) -> list[int]:
        bad = [p for p in v if not 0 <= p <= 0xFFFF]
        if bad:
            raise ValueError(f"ports are 0-65535, not {bad[0]}")
        return v

    @field_validator("sample")
    @classmethod
    def _sample(cls, v: list[str]) -> list[str]:
        for text in v:
            parse_sample(text)
        return v

    @field_validator("emit_fields")
    @classmethod
    def _emit_fields(cls, v: list[str]) -> list[str]:
        check_emit_fields(v)
        return v

    @field_validator("sink", mode="before")
    @classmethod
    def _sinks(cls, v: Any) -> Any:
        # URLs may hold commas (several broker hosts), so a string splits on whitespace only.
        return v.split() if isinstance(v, str) else v

    @field_validator("states", "aggregate_by", "netns", "exclude_port", "emit_fields", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _split_list(v)

    @field_validator("family", mode="before")
    @classmethod
    def _families(cls, v: Any) -> Any:
        v = _split_list(v)
        if not isinstance(v, list):
            return v
        return [{"ipv4": "inet", "ipv6": "inet6", "4": "inet", "6": "inet6"}.get(x, x) for x in v]

    @field_validator("states")
    @classmethod
    def _states(cls, v: list[str]) -> list[str]:
        try:
            states_mask(v)
        except ValueError as exc:
            raise ValueError(f"{exc}; allowed: {', '.join(STATE_GROUPS)}, {', '.join(c.TCP_STATES)}, "
                             "and -NAME to exclude") from None
        return v

    @field_validator("metrics_listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        if not v:
            return v
        host, sep, port = v.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError("expected HOST:PORT, or empty to turn metrics off")
        if not 0 < int(port) < 65536:
            raise ValueError(f"port {port} is out of range (1..65535)")
        host = host.strip("[]")
        if host:
            try:
                socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            except (OSError, UnicodeError) as exc:
                raise ValueError(f"cannot listen on host {host!r}: {exc}") from None
        return v

    @field_validator("stats_json")
    @classmethod
    def _stats_path(cls, v: str | None) -> str | None:
        # Checked now, not at exit: finding out then would lose the whole run's counters.
        if v is None:
            return v
        if not v or os.path.isdir(v):
            raise ValueError(f"{v!r} is a directory, not a file path")
        parent = os.path.dirname(os.path.abspath(v))
        if not os.path.isdir(parent):
            raise ValueError(f"directory {parent} does not exist")
        if not os.access(parent, os.W_OK) or (os.path.exists(v) and not os.access(v, os.W_OK)):
            raise ValueError(f"{v} is not writable")
        return v

    @model_validator(mode="after")
    def _poll_fits_interval(self) -> Settings:
        if (not self.once and self.count != 1 and self.poll_timeout is not None
                and self.interval <= self.poll_timeout):
            raise ValueError(f"--interval ({self.interval}s) must be greater than --poll-timeout "
                             f"({self.poll_timeout}s): a poll must end before the next one starts")
        if self.once and self.count is not None:
            raise ValueError("--once and --count cannot be combined")
        return self


#: XTCP_* variables that are not options: the config file path and the test harness's own.
_ENV_NOT_OPTIONS = {"XTCP_CONFIG", "XTCP_CACHE_DIR", "XTCP_FIXTURES_DIR",
                    "XTCP_NATIVE"}  # issue 13: XTCP_NATIVE=0 runs the numpy paths (xtcp_async/native.py)


@dataclass(frozen=True)
class PollSettings:
    """The poller's slice."""

    families: tuple[int, ...]
    states_mask: int
    interval_s: float
    jitter: float
    poll_timeout_s: float
    count: int | None
    #: issue 10: which namespaces to poll and how often to rediscover them.
    netns: NetnsSelection = field(default_factory=lambda: NetnsSelection(mode="self"))
    netns_rescan_s: float | None = None
    #: Compiled --filter/--exclude-port program sent with every dump (b"": none).
    bytecode: bytes = b""


@dataclass(frozen=True)
class SinkConfig:
    """One sink: its parsed URL and the format its payloads use."""

    spec: SinkSpec
    format: str | None


@dataclass(frozen=True)
class Config:
    """The validated, frozen configuration and its per-component slices."""

    settings: Settings
    poll: PollSettings
    sinks: tuple[SinkConfig, ...]
    daemon_version: str = __version__
    stages: StageSettings = field(default_factory=StageSettings)


def _read_toml(path: str) -> dict[str, Any]:
    import tomllib  # only with a config file: start-up cost (issue 13)

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"config: cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config: config file {path} is not UTF-8 text (byte {exc.start}): "
                          "is it the right file?") from None
    # Accept both `poll_timeout` and `poll-timeout` spellings in the file.
    return {k.replace("-", "_"): v for k, v in data.items()}


def _flag(loc: tuple[int | str, ...]) -> str:
    return "--" + str(loc[0]).replace("_", "-") if loc else "config"


def load_config(flags: dict[str, Any], config_file: str | None = None) -> Config:
    """Merge file < env < flags, validate, and slice; raises ConfigError naming the field."""
    config_file = config_file or os.environ.get("XTCP_CONFIG")
    file_values = _read_toml(config_file) if config_file else {}
    warn_unknown_env(os.environ)
    try:
        settings = Settings.model_validate({**file_values, **env_values(os.environ), **flags})
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        where = _flag(err["loc"]) + ": " if err["loc"] else ""
        got = err.get("input")
        got_text = f" (got {got!r})" if err["type"] != "missing" and not isinstance(got, dict) else ""
        raise ConfigError(f"config: {where}{msg}{got_text}") from None
    return _slice(settings)


def env_values(environ: Mapping[str, str]) -> dict[str, str]:
    """The options set as ``XTCP_<NAME>`` in ``environ``, by field name, as the raw strings.

    Names match case-insensitively (``xtcp_interval`` counts too), as pydantic-settings matched
    them; list options are split by their validators, nothing is decoded as JSON.
    """
    lowered = {k.lower(): v for k, v in environ.items()}
    return {name: lowered[key] for name in Settings.model_fields if (key := "xtcp_" + name) in lowered}


def warn_unknown_env(environ: Mapping[str, str]) -> list[str]:
    """Warn (stderr) about each XTCP_* variable that is no option, naming the closest one.

    A typo such as XTCP_INTREVAL=5 would otherwise be ignored without a word. Returns the warnings.
    """
    options = {"XTCP_" + name.upper(): name for name in Settings.model_fields}
    warnings = []
    for key in sorted(environ):
        if not key.startswith("XTCP_") or key in options or key in _ENV_NOT_OPTIONS or key.startswith("XTCP_TEST_"):
            continue
        import difflib  # only for a misspelt variable: start-up cost (issue 13)

        close = difflib.get_close_matches(key, list(options), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        warnings.append(f"xtcp-async: warning: environment variable {key} is not an option{hint}; ignored")
    for line in warnings:
        print(line, file=sys.stderr)
    return warnings


def _slice(s: Settings) -> Config:
    sinks: list[SinkConfig] = []
    for item in s.sink:
        if isinstance(item, dict):
            options = dict(item)
            url = options.pop("url", None)
            if not url:
                raise ConfigError("config: sink table needs a 'url'")
            spec = parse_sink_url(url, options)
        else:
            spec = parse_sink_url(item)
        fmt = spec.format or s.format
        if fmt is not None and fmt not in FORMATS:
            raise ConfigError(f"config: --format: {fmt!r} is not one of {', '.join(FORMATS)}")
        if spec.records != "rows" and not s.aggregate:
            raise ConfigError(f"config: sink {spec.scheme}: records={spec.records} needs --aggregate")
        sinks.append(SinkConfig(spec=spec, format=fmt))
    families = tuple(c.AF_INET if f == "inet" else c.AF_INET6 for f in dict.fromkeys(s.family))
    count = 1 if s.once else s.count
    poll = PollSettings(families=families, states_mask=states_mask(s.states), interval_s=s.interval,
                        jitter=s.jitter, poll_timeout_s=effective_poll_timeout(s), count=count,
                        netns=parse_netns_selection(s.netns), netns_rescan_s=s.netns_rescan,
                        bytecode=_bytecode(s))
    stages = StageSettings(samples=tuple(parse_sample(x) for x in s.sample), emit=s.emit,
                           heartbeat=s.heartbeat, emit_fields=tuple(s.emit_fields))
    return Config(settings=s, poll=poll, sinks=tuple(sinks), stages=stages)


def _bytecode(s: Settings) -> bytes:
    try:
        return kernel_bytecode(s.filter, s.exclude_port)
    except ValueError as exc:
        raise ConfigError(f"config: --filter: {exc}") from None


def effective_poll_timeout(s: Settings) -> float:
    """--poll-timeout as given, else 5 s capped at 80% of the interval."""
    if s.poll_timeout is not None:
        return s.poll_timeout
    return min(DEFAULT_POLL_TIMEOUT_S, 0.8 * s.interval)


DEFAULT_POLL_TIMEOUT_S = 5.0
