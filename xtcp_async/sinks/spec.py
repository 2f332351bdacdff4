"""Parsing a ``--sink`` URL into a :class:`SinkSpec` (pure; no sink is imported here)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from xtcp_async.errors import ConfigError
from xtcp_async.sinks.base import FORMATS

RECORDS = ("rows", "aggregates", "both")


@dataclass(frozen=True)
class SinkSpec:
    """One configured sink: its URL taken apart, plus options from the URL query or config file.

    ``hosts`` is the comma-separated host list of the URL (``kafka://a:9092,b:9092/topic``),
    ``path`` the rest without the leading slash (a topic, or a file path for ``file:``).
    """

    url: str
    scheme: str
    hosts: tuple[tuple[str, int | None], ...]
    path: str
    format: str | None
    options: dict[str, str] = field(default_factory=dict)
    #: ?records=rows|aggregates|both: socket rows, aggregate records (--aggregate), or both (issue 12).
    records: str = "rows"

    @property
    def redacted(self) -> str:
        """The URL as it may be shown in messages and logs: no credentials, no secret options."""
        return redact_url(self.url)

    def host_ports(self, default_port: int) -> list[tuple[str, int]]:
        """The hosts with ``default_port`` filled in where the URL gave none."""
        return [(h, p if p is not None else default_port) for h, p in self.hosts]


#: Option names whose values are secrets (a `*_file` or `*_env` option names where one is, and is shown).
_SECRET_OPTION = re.compile(r"(password|secret|token|credential)(?!.*_(file|env)$)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with any user:password@ and the values of secret-looking options replaced by ***.

    Every message that shows a sink URL goes through this: an error must never echo a password
    to stderr or a log collector.
    """
    head, sep, query = url.partition("?")
    scheme, ssep, rest = head.partition("://")
    if ssep:
        netloc, slash, path = rest.partition("/")
        if "@" in netloc:
            netloc = "***@" + netloc.rpartition("@")[2]
        head = f"{scheme}://{netloc}{slash}{path}"
    if not sep:
        return head
    parts = []
    for item in query.split("&"):
        name, eq, _value = item.partition("=")
        parts.append(f"{name}=***" if eq and _SECRET_OPTION.search(unquote(name)) else item)
    return head + "?" + "&".join(parts)


def _split_host(item: str, url: str) -> tuple[str, int | None]:
    item = item.strip()
    if item.startswith("["):  # [::1]:4150
        host, _, rest = item[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif item.count(":") == 1:
        host, _, port_text = item.partition(":")
    else:
        host, port_text = item, ""
    port: int | None = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError(f"sink: bad port {port_text!r} in {redact_url(url)!r} (allowed: 1..65535)")
        port = int(port_text)
    return host, port


def parse_sink_url(url: str, extra_options: dict[str, str] | None = None) -> SinkSpec:
    """Take a sink URL apart; ``extra_options`` (from a config file) lose to the URL's query."""
    if "://" not in url:
        if url in ("stdout", "null"):
            url = f"{url}://"
        else:
            raise ConfigError(f"sink: {redact_url(url)!r} is not a URL (expected scheme://..., "
                              "e.g. udp://127.0.0.1:9000)")
    try:
        parts = urlsplit(url)
        if "," not in parts.netloc:  # several hosts are checked one by one below
            parts.port  # noqa: B018 - validates the bracketed host and port now, not at first use
    except ValueError as exc:
        raise ConfigError(f"sink: {redact_url(url)!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    options = {k: str(v) for k, v in (extra_options or {}).items()}
    options.update(dict(parse_qsl(parts.query, keep_blank_values=True)))
    fmt = options.pop("format", None)
    records = options.pop("records", "rows")
    if records not in RECORDS:
        raise ConfigError(f"sink: records {records!r} in {url!r} is not one of {', '.join(RECORDS)}")
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"sink: format {fmt!r} in {redact_url(url)!r} is not one of {', '.join(FORMATS)}")
    netloc = parts.netloc
    if "@" in netloc:
        # Credentials never come from the command line (they would show in `ps`).
        raise ConfigError(f"sink: {scheme}:// URL must not carry credentials; use a password file option")
    hosts = tuple(_split_host(h, url) for h in netloc.split(",") if h.strip()) if netloc else ()
    path = unquote(parts.path)
    if scheme == "file" and netloc:
        # file://relative/x.jsonl would silently write /x.jsonl (the host part is not a path).
        raise ConfigError(f"sink file: {redact_url(url)!r} has a host part {netloc!r}; a file URL is "
                          f"file:///absolute/path (three slashes), e.g. file:///{quote(netloc)}{parts.path}")
    if scheme != "file":
        path = path.lstrip("/")
    return SinkSpec(url=url, scheme=scheme, hosts=hosts, path=path, format=fmt, options=options, records=records)
