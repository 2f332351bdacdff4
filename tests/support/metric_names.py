"""The metric names xtcp_async exports, read from xtcp_async/ops/metrics.py, so dashboards and alert
rules can be checked against the real names (a renamed metric fails those tests)."""

from __future__ import annotations

import re
from pathlib import Path

METRICS = Path(__file__).resolve().parents[2] / "xtcp_async" / "ops" / "metrics.py"


def exported_metric_names() -> set[str]:
    """Series names as Prometheus sees them (counters with _total, the histogram's three series)."""
    text = METRICS.read_text()
    counters = set(re.findall(r'counter\("(\w+)"', text)) | set(
        re.findall(r'CounterMetricFamily\(f"\{PREFIX\}_(\w+)"', text))
    gauges = set(re.findall(r'gauge\("(\w+)"', text)) | set(re.findall(r'GaugeMetricFamily\(f"\{PREFIX\}_(\w+)"', text))
    names = {f"xtcp_{c}_total" for c in counters} | {f"xtcp_{g}" for g in gauges}
    names |= {f"xtcp_poll_duration_seconds_{s}" for s in ("bucket", "sum", "count")} | {"xtcp_build_info"}
    return names | {"process_cpu_seconds_total", "process_resident_memory_bytes", "up"}
