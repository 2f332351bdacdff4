"""deploy/prometheus/rules.yaml passes the real `promtool check rules` and its unit tests
(`promtool test rules`), and every alert carries a `for:`, a severity and a runbook line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.support.metric_names import exported_metric_names
from tests.support.tools import go_tool, run

PROM = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"
RULES = PROM / "rules.yaml"
RULE_TESTS = PROM / "rules_test.yaml"


def alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_promtool_check_rules_passes() -> None:
    """The real promtool accepts the rule file."""
    proc = run(go_tool("promtool"), "check", "rules", RULES)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in proc.stdout


def test_promtool_unit_tests_pass() -> None:
    """rules_test.yaml's cases (labels and rendered annotations included) hold under promtool."""
    proc = run(go_tool("promtool"), "test", "rules", RULE_TESTS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests are not vacuous: with one threshold changed, promtool reports a failure."""
    (tmp_path / "rules.yaml").write_text(RULES.read_text().replace("> 0.5 * xtcp_poll_timeout_seconds",
                                                                   "> 0.9 * xtcp_poll_timeout_seconds"))
    (tmp_path / "rules_test.yaml").write_text(RULE_TESTS.read_text())
    proc = run(go_tool("promtool"), "test", "rules", tmp_path / "rules_test.yaml")
    assert proc.returncode != 0
    assert "XtcpPollsSlow" in proc.stdout + proc.stderr


def test_every_alert_has_for_severity_and_runbook() -> None:
    """for: set, severity warning/critical, and summary, description and runbook annotations."""
    for rule in alerts():
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]


def test_the_alerts_the_issue_asks_for_exist_and_read_real_metrics() -> None:
    """Data dropped, sink falling behind, polls failing or slow, no sockets, agent down; every metric
    they read is one the agent exports; slow/stalled polls use the exported interval and timeout."""
    by_name = {r["alert"]: r for r in alerts()}
    assert {"XtcpDataDropped", "XtcpSinkFallingBehind", "XtcpPollsFailing", "XtcpPollsSlow", "XtcpNoSocketsSeen",
            "XtcpAgentDown"} <= set(by_name)
    known = exported_metric_names()
    for rule in by_name.values():
        for name in re.findall(r"\b((?:xtcp|process)_\w+|up)\{?", rule["expr"]):
            assert name in known, (rule["alert"], name)
    assert "xtcp_poll_timeout_seconds" in by_name["XtcpPollsSlow"]["expr"]
    assert "xtcp_poll_interval_seconds" in by_name["XtcpPollsStalled"]["expr"]


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    """rules_test.yaml checks each alert both firing and not firing."""
    doc = yaml.safe_load(RULE_TESTS.read_text())
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in doc["tests"]:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {r["alert"] for r in alerts()}
    assert fired == names == quiet
