"""Write deploy/grafana/*.json: the ClickHouse dashboard (built from deploy/clickhouse/queries, so
its panels are the tested queries) and the agent dashboard (Prometheus, xtcp_async's metrics).

Run `python scripts/gen_dashboards.py` after changing a query file or a panel below;
tests/unit/deploy/test_grafana.py fails while the committed JSON differs from what this writes.

The query files ask about "the last hour"; on the dashboard that window becomes Grafana's time
range and the location/host/ASN variables (grafana-clickhouse-datasource macros: $__timeFilter,
$__timeInterval; variables as ${name:singlequote}).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT / "deploy" / "clickhouse" / "queries"
OUT = ROOT / "deploy" / "grafana"

CLICKHOUSE = "grafana-clickhouse-datasource"
PROMETHEUS = "prometheus"
LAST_HOUR = "event_time >= now() - INTERVAL 1 HOUR"
#: What "the last hour" becomes on the dashboard: the time picker and the three variables.
DASHBOARD_FILTER = ("$__timeFilter(event_time) AND location IN (${location:singlequote}) "
                    "AND hostname IN (${host:singlequote}) "
                    "AND ('${asn}' = '' OR toString(inet_diag_msg_socket_dest_asn) = '${asn}')")
SCHEMA_VERSION = 39

# (query file, panel type, title, width, query type)
CLICKHOUSE_PANELS = [
    ("rtt_by_location.sql", "table", "RTT p50/p99 by location", 12, "table"),
    ("retransmit_share_by_location.sql", "table", "Retransmit share by location", 12, "table"),
    ("sockets_by_state.sql", "timeseries", "Sockets by state", 24, "timeseries"),
    ("rtt_by_remote_network.sql", "table", "RTT p50/p99 by remote network (/24, /48)", 12, "table"),
    ("rtt_by_asn.sql", "table", "RTT p50/p99 by remote ASN", 12, "table"),
    ("worst_remote_networks.sql", "table", "Worst remote networks", 12, "table"),
    ("bytes_by_congestion_algorithm.sql", "table", "Bytes by congestion algorithm", 12, "table"),
    ("bbr_candidates.sql", "table", "Clients that would gain from BBR", 24, "table"),
]

RTT_OVER_TIME = f"""SELECT
    $__timeInterval(event_time) AS time,
    location,
    quantile(0.5)(tcp_info_rtt) / 1000 AS rtt_p50_ms,
    quantile(0.99)(tcp_info_rtt) / 1000 AS rtt_p99_ms
FROM xtcp.sockets
WHERE {DASHBOARD_FILTER}
  AND state_name = 'ESTABLISHED' AND tcp_info_rtt > 0
GROUP BY time, location
ORDER BY time"""

DEAD_LETTERS = """SELECT count() AS unparsed_messages
FROM xtcp.kafka_errors
WHERE $__timeFilter(received_at)"""


def dashboard_sql(query_file: Path) -> tuple[str, str]:
    """(description, SQL for Grafana) of one query file."""
    first, *rest = query_file.read_text().splitlines()
    sql = "\n".join(rest).strip().rstrip(";")
    if LAST_HOUR not in sql:
        raise SystemExit(f"{query_file.name}: no '{LAST_HOUR}' to turn into the dashboard's time range")
    sql = sql.replace(LAST_HOUR, DASHBOARD_FILTER).replace("toStartOfMinute(event_time)",
                                                            "$__timeInterval(event_time)")
    return first.removeprefix("-- "), sql


class Layout:
    """Panels left to right, rows of 24 grid units."""

    def __init__(self) -> None:
        self.x = self.y = self.row_h = 0
        self.next_id = 1

    def place(self, w: int, h: int) -> dict[str, int]:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def panel(self, kind: str, title: str, w: int, h: int, ds: dict[str, str], targets: list[dict[str, Any]],
              description: str = "", unit: str | None = None) -> dict[str, Any]:
        panel: dict[str, Any] = {
            "id": self.next_id, "type": kind, "title": title, "description": description, "datasource": ds,
            "gridPos": self.place(w, h), "targets": targets,
            "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []}, "options": {},
        }
        self.next_id += 1
        return panel


def ch_target(sql: str, query_type: str) -> dict[str, Any]:
    return {"refId": "A", "datasource": CH_DS, "editorType": "sql", "queryType": query_type,
            "format": 0 if query_type == "timeseries" else 1, "rawSql": sql}


CH_DS = {"type": CLICKHOUSE, "uid": "${datasource}"}
PROM_DS = {"type": PROMETHEUS, "uid": "${datasource}"}


def datasource_variable(plugin: str) -> dict[str, Any]:
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": plugin,
            "current": {}, "hide": 0, "refresh": 1, "options": []}


def query_variable(name: str, label: str, ds: dict[str, str], query: str) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "query", "datasource": ds, "query": query,
            "definition": query, "refresh": 2, "multi": True, "includeAll": True,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "hide": 0, "options": [],
            "sort": 1}


def dashboard(uid: str, title: str, tags: list[str], variables: list[dict[str, Any]],
              panels: list[dict[str, Any]], refresh: str) -> dict[str, Any]:
    return {"uid": uid, "title": title, "tags": tags, "timezone": "utc", "editable": True,
            "schemaVersion": SCHEMA_VERSION, "version": 1, "refresh": refresh,
            "time": {"from": "now-1h", "to": "now"}, "templating": {"list": variables},
            "annotations": {"list": []}, "links": [], "panels": panels}


def clickhouse_dashboard() -> dict[str, Any]:
    lay = Layout()
    panels = [
        lay.panel("timeseries", "RTT p50/p99 by location over time", 18, 8, CH_DS,
                  [ch_target(RTT_OVER_TIME, "timeseries")],
                  "RTT percentiles of established sockets with an RTT sample, per location.", "ms"),
        lay.panel("stat", "Unparsed Kafka messages", 6, 8, CH_DS, [ch_target(DEAD_LETTERS, "table")],
                  "Rows in xtcp.kafka_errors: messages the queue could not parse (schema mistakes).", "short"),
    ]
    for name, kind, title, width, query_type in CLICKHOUSE_PANELS:
        description, sql = dashboard_sql(QUERIES / name)
        panels.append(lay.panel(kind, title, width, 9, CH_DS, [ch_target(sql, query_type)],
                                f"{description} (deploy/clickhouse/queries/{name})"))
    window = "$__timeFilter(event_time)"
    variables = [
        datasource_variable(CLICKHOUSE),
        query_variable("location", "Location", CH_DS,
                       f"SELECT DISTINCT location FROM xtcp.sockets WHERE {window} ORDER BY location"),
        query_variable("host", "Host", CH_DS,
                       f"SELECT DISTINCT hostname FROM xtcp.sockets WHERE {window} "
                       "AND location IN (${location:singlequote}) ORDER BY hostname"),
        {"name": "asn", "label": "Remote ASN (empty: all)", "type": "textbox", "query": "",
         "current": {"text": "", "value": ""}, "hide": 0, "options": []},
    ]
    return dashboard("xtcp-sockets", "xtcp: sockets (ClickHouse)", ["xtcp", "clickhouse"], variables, panels,
                     "1m")


SEL = '{instance=~"$instance"}'
SINK_SEL = '{instance=~"$instance", sink=~"$sink"}'

# (title, unit, width, [(legend, expression)], description)
AGENT_PANELS: list[tuple[str, str, int, list[tuple[str, str]], str]] = [
    ("Polls per second", "ops", 8, [
        ("{{instance}} polls", f"sum by (instance) (rate(xtcp_polls_total{SEL}[$__rate_interval]))"),
        ("{{instance}} failed", f"sum by (instance) (rate(xtcp_polls_failed_total{SEL}[$__rate_interval]))"),
        ("{{instance}} timeouts", f"sum by (instance) (rate(xtcp_poll_timeouts_total{SEL}[$__rate_interval]))"),
    ], "Polls run, failed (a dump failed) and dumps abandoned after --poll-timeout."),
    ("Poll duration", "s", 8, [
        ("p50 {{family}}", "histogram_quantile(0.5, sum by (le, family) "
                           f"(rate(xtcp_poll_duration_seconds_bucket{SEL}[$__rate_interval])))"),
        ("p99 {{family}}", "histogram_quantile(0.99, sum by (le, family) "
                           f"(rate(xtcp_poll_duration_seconds_bucket{SEL}[$__rate_interval])))"),
        ("poll timeout {{instance}}", f"xtcp_poll_timeout_seconds{SEL}"),
    ], "Time to dump one address family, against the configured --poll-timeout."),
    ("Sockets per poll", "short", 8, [
        ("{{instance}}", f"xtcp_poll_sockets{SEL}"),
    ], "Socket rows in each host's last completed poll."),
    ("Payloads dropped by sink and reason", "ops", 12, [
        ("{{sink}} {{reason}}",
         f"sum by (sink, reason) (rate(xtcp_sink_dropped_payloads_total{SINK_SEL}[$__rate_interval]))"),
        ("records too large", f"sum(rate(xtcp_records_too_large_total{SEL}[$__rate_interval]))"),
    ], "Data given up: buffer full (sink too slow), rejected by the broker, shutdown, too large."),
    ("Sink buffer fill", "percentunit", 12, [
        ("{{instance}} {{sink}}", f"xtcp_sink_buffer_bytes{SINK_SEL} / xtcp_sink_buffer_limit_bytes{SINK_SEL}"),
    ], "Bytes buffered for each sink as a share of its bound; at 100% the oldest payloads are dropped."),
    ("Sink deliveries and errors", "ops", 12, [
        ("{{sink}} delivered",
         f"sum by (sink) (rate(xtcp_sink_payloads_delivered_total{SINK_SEL}[$__rate_interval]))"),
        ("{{sink}} errors", f"sum by (sink) (rate(xtcp_sink_delivery_errors_total{SINK_SEL}[$__rate_interval]))"),
    ], "Payloads acknowledged per second and failed attempts (each retry counts)."),
    ("Sinks connected", "short", 12, [
        ("{{instance}} {{sink}}", f"xtcp_sink_connected{SINK_SEL}"),
    ], "1 while a sink can deliver and its last delivery succeeded."),
    ("Agent CPU and memory", "short", 12, [
        ("{{instance}} CPU cores", f"rate(process_cpu_seconds_total{SEL}[$__rate_interval])"),
        ("{{instance}} RSS MiB", f"process_resident_memory_bytes{SEL} / 2^20"),
    ], "The agent's own cost."),
    ("Longest event loop stall", "s", 12, [
        ("{{instance}}", f"xtcp_event_loop_stall_max_seconds{SEL}"),
    ], "Longest time the event loop was blocked since start."),
]


def agent_dashboard() -> dict[str, Any]:
    lay = Layout()
    panels = []
    for title, unit, width, exprs, description in AGENT_PANELS:
        targets = [{"refId": chr(ord("A") + i), "datasource": PROM_DS, "expr": expr, "legendFormat": legend,
                    "range": True} for i, (legend, expr) in enumerate(exprs)]
        panels.append(lay.panel("timeseries", title, width, 8, PROM_DS, targets, description, unit))
    variables = [
        datasource_variable(PROMETHEUS),
        query_variable("instance", "Instance", PROM_DS, "label_values(xtcp_build_info, instance)"),
        query_variable("sink", "Sink", PROM_DS, 'label_values(xtcp_sink_connected{instance=~"$instance"}, sink)'),
    ]
    for v in variables[1:]:
        v["query"] = {"query": v["query"], "refId": "PrometheusVariableQueryEditor-VariableQuery"}
    return dashboard("xtcp-agent", "xtcp: agent (Prometheus)", ["xtcp", "prometheus"], variables, panels, "30s")


def render() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    return {name: json.dumps(board, indent=2, ensure_ascii=False) + "\n"
            for name, board in (("xtcp-clickhouse.json", clickhouse_dashboard()),
                                ("xtcp-agent.json", agent_dashboard()))}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
