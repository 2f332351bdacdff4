"""What Grafana does to a panel's query before the data source sees it, for the tests: variables
and the grafana-clickhouse-datasource macros expanded (as the plugin documents them), and the
Prometheus data source's $__rate_interval."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"


def load(name: str) -> dict[str, Any]:
    board: dict[str, Any] = json.loads((GRAFANA / name).read_text())
    return board


def panels(board: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


def targets(board: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield panel, target


def expand_variables(text: str, values: Mapping[str, Sequence[str]]) -> str:
    """${name}, ${name:singlequote}, $name: a multi-value variable as Grafana formats it."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        fmt = m.group(2)
        if name.startswith("__"):
            return m.group(0)  # a macro or built-in, not a dashboard variable
        vals = values[name]
        if fmt == "singlequote":
            return ",".join("'" + v.replace("'", "\\'") + "'" for v in vals)
        if fmt is None and len(vals) != 1:
            # The Prometheus data source's form: regex specials escaped for a PromQL string (\\.).
            return "(" + "|".join(re.sub(r"[\\^$*+?.()|\[\]{}]", lambda c: "\\\\" + c.group(0), v)
                                  for v in vals) + ")"
        if fmt is not None:
            raise ValueError(f"variable format {fmt!r} is not handled here")
        return vals[0]

    return re.sub(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)", one, text)


def expand_clickhouse_macros(sql: str, start_s: int, end_s: int, interval_s: int) -> str:
    """The plugin's time macros: $__timeFilter(c), $__timeInterval(c), $__fromTime, $__toTime, $__interval_s."""
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)",
                 lambda m: f"{m.group(1)} >= toDateTime({start_s}) AND {m.group(1)} <= toDateTime({end_s})", sql)
    sql = re.sub(r"\$__timeInterval\(([^)]+)\)",
                 lambda m: f"toStartOfInterval(toDateTime({m.group(1)}), INTERVAL {interval_s} second)", sql)
    sql = sql.replace("$__fromTime", f"toDateTime({start_s})").replace("$__toTime", f"toDateTime({end_s})")
    sql = sql.replace("$__interval_s", str(interval_s))
    if "$__" in sql:
        raise ValueError(f"a macro this expansion does not know: {sql}")
    return sql
