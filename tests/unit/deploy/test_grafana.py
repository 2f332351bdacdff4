"""deploy/grafana: both dashboards are what scripts/gen_dashboards.py writes, follow Grafana's
dashboard model, and every Prometheus expression is valid PromQL for the real promtool. (The
ClickHouse panels' SQL runs in tests/integration/kafka/test_clickhouse_pipeline.py.)"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.support.grafana import GRAFANA, expand_variables, load, panels, targets
from tests.support.metric_names import exported_metric_names
from tests.support.tools import go_tool, run

ROOT = Path(__file__).resolve().parents[3]
BOARDS = {"xtcp-clickhouse.json": "grafana-clickhouse-datasource", "xtcp-agent.json": "prometheus"}
PANEL_TYPES = {"timeseries", "table", "stat", "gauge", "bargauge", "barchart", "piechart", "text", "row"}
VARIABLE_TYPES = {"query", "custom", "textbox", "constant", "datasource", "interval", "adhoc"}


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_dashboards", ROOT / "scripts" / "gen_dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_dashboards_are_the_generated_ones() -> None:
    """deploy/grafana/*.json equal what scripts/gen_dashboards.py writes from the query files."""
    rendered = generator().render()
    assert set(rendered) == set(BOARDS)
    for name, text in rendered.items():
        assert (GRAFANA / name).read_text() == text, f"{name} is stale: run python scripts/gen_dashboards.py"


def check_dashboard(board: dict[str, Any], plugin: str) -> None:
    """Grafana's dashboard JSON model, the parts an import relies on."""
    for key, kind in (("uid", str), ("title", str), ("schemaVersion", int), ("panels", list),
                      ("templating", dict), ("time", dict), ("tags", list), ("version", int)):
        assert isinstance(board[key], kind), key
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", board["uid"])
    assert board["schemaVersion"] >= 36
    assert set(board["time"]) == {"from", "to"}
    variables = board["templating"]["list"]
    names = [v["name"] for v in variables]
    assert len(names) == len(set(names))
    for v in variables:
        assert v["type"] in VARIABLE_TYPES, v
        if v["type"] == "query":
            assert v["datasource"] == {"type": plugin, "uid": "${datasource}"}
            assert v["query"]
    (ds_var,) = [v for v in variables if v["type"] == "datasource"]
    assert ds_var["name"] == "datasource" and ds_var["query"] == plugin
    ids: set[int] = set()
    cells: set[tuple[int, int]] = set()
    for panel in panels(board):
        assert isinstance(panel["id"], int) and panel["id"] not in ids
        ids.add(panel["id"])
        assert panel["type"] in PANEL_TYPES and panel["title"]
        pos = panel["gridPos"]
        assert set(pos) == {"h", "w", "x", "y"} and all(isinstance(v, int) and v >= 0 for v in pos.values())
        assert pos["w"] > 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not mine & cells, f"panel {panel['title']!r} overlaps another"
        cells |= mine
        assert panel["datasource"] == {"type": plugin, "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs))
    # Every variable a query uses is defined (a typo would silently match nothing in Grafana).
    used = {m for _, t in targets(board) for m in re.findall(r"\$\{?(\w+)", t.get("rawSql") or t.get("expr", ""))}
    assert {u for u in used if not u.startswith("__")} <= set(names)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_dashboard_follows_the_dashboard_model(name: str) -> None:
    """uid, title, schemaVersion, time, unique variable names and panel ids, panels on the 24-column
    grid without overlap, every panel on the dashboard's data-source variable."""
    check_dashboard(load(name), BOARDS[name])


def test_clickhouse_dashboard_has_a_panel_per_query_and_the_three_filters() -> None:
    """Every query file is a panel, and the SQL filters by the location, host and ASN variables."""
    board = load("xtcp-clickhouse.json")
    names = {v["name"] for v in board["templating"]["list"]}
    assert {"location", "host", "asn"} <= names
    descriptions = " ".join(p["description"] for p in panels(board))
    for query in sorted((ROOT / "deploy" / "clickhouse" / "queries").glob("*.sql")):
        assert f"queries/{query.name}" in descriptions
    for _, target in targets(board):
        sql = target["rawSql"]
        if "xtcp.sockets" in sql:
            for needle in ("$__timeFilter(event_time)", "${location:singlequote}", "${host:singlequote}", "${asn}"):
                assert needle in sql


def prometheus_exprs() -> list[str]:
    board = load("xtcp-agent.json")
    values = {"instance": ["node-a:9088", "node-b:9088"], "sink": ["0:kafka"]}
    exprs = [expand_variables(t["expr"], values).replace("$__rate_interval", "1m") for _, t in targets(board)]
    for v in board["templating"]["list"]:
        if v["type"] == "query":
            inner = re.fullmatch(r"label_values\((.*), \w+\)", v["query"]["query"])
            assert inner, v["query"]
            exprs.append(expand_variables(inner.group(1), values))
    return exprs


def test_agent_dashboard_reads_only_metrics_the_agent_exports() -> None:
    """Every metric name in the agent dashboard is one xtcp_async/ops/metrics.py exports."""
    known = exported_metric_names()
    for expr in prometheus_exprs():
        for name in re.findall(r"\b((?:xtcp|process)_\w+)", expr):
            assert name in known, f"{name} in {expr!r}"


def test_every_prometheus_expression_is_valid_promql(tmp_path: Path) -> None:
    """Each panel expression and variable query, with Grafana's variables filled in, passes
    `promtool check rules` as a recording rule."""
    exprs = prometheus_exprs()
    assert len(exprs) >= 10
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr_{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard-exprs.yaml"
    path.write_text(yaml.safe_dump(rules))
    proc = run(go_tool("promtool"), "check", "rules", path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in proc.stdout


def test_a_broken_expression_is_caught_by_promtool(tmp_path: Path) -> None:
    """The check above can fail: promtool rejects an unbalanced expression."""
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"record": "x:y", "expr": "sum(rate(xtcp_polls_total[1m])"}]}]}))
    assert run(go_tool("promtool"), "check", "rules", path).returncode != 0
