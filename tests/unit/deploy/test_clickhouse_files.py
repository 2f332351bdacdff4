"""The README's ClickHouse recipe is the one the end-to-end test runs: same files, same order,
every parameter the files use is set, the .proto goes where the queue looks for it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.clickhouse import DDL_DIR, ddl_files, query_files

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"


def clickhouse_section() -> str:
    text = README.read_text()
    start = text.index("### Into ClickHouse through Kafka")
    return text[start:text.index("\n## ", start)]


def parameters_used() -> set[str]:
    return {m for f in ddl_files() for m in re.findall(r"\{(\w+):\w+\}", f.read_text())}


def test_schema_files_create_the_queue_the_table_the_views_and_the_dead_letters() -> None:
    """Applied in name order, the files create the database, then each table before what reads it."""
    creates = [re.search(r"CREATE (?:DATABASE|TABLE|MATERIALIZED VIEW) IF NOT EXISTS ([\w.]+)", f.read_text())
               for f in ddl_files()]
    names = [m.group(1) for m in creates if m]
    assert names == ["xtcp", "xtcp.sockets", "xtcp.kafka_errors", "xtcp.sockets_queue", "xtcp.sockets_mv",
                     "xtcp.kafka_errors_mv"]
    queue = (DDL_DIR / "04_sockets_queue.sql").read_text()
    assert "kafka_handle_error_mode = 'stream'" in queue
    assert "kafka_format = 'ProtobufList'" in queue
    table = (DDL_DIR / "02_sockets.sql").read_text()
    assert "TTL toDateTime(event_time) + INTERVAL {ttl_days:UInt32} DAY" in table
    assert "PARTITION BY toDate(event_time)" in table
    assert "ORDER BY (location, hostname, event_time)" in table


def test_readme_applies_the_files_with_every_parameter_they_use() -> None:
    """The README's loop globs the same files the test applies and passes each {name:Type} parameter."""
    section = clickhouse_section()
    (loop,) = re.findall(r"for f in (\S+); do", section)
    assert sorted(ROOT.glob(loop)) == ddl_files()
    assert set(re.findall(r"--param_(\w+)=", section)) == parameters_used() == {
        "ttl_days", "kafka_brokers", "kafka_topic", "kafka_group"}


def test_readme_puts_the_proto_where_the_queue_resolves_it() -> None:
    """The .proto is copied into format_schemas under the name the queue's kafka_schema uses."""
    section = clickhouse_section()
    (schema,) = re.findall(r"kafka_schema = '([^':]+):XtcpFlatRecord'", (DDL_DIR / "04_sockets_queue.sql").read_text())
    assert f"cp proto/{schema} /var/lib/clickhouse/format_schemas/" in section


def test_every_query_file_says_what_it_answers() -> None:
    """Each query file begins with a one-line comment, then one statement."""
    for path in query_files():
        first, *rest = path.read_text().splitlines()
        assert first.startswith("-- ") and len(first) > 20, path.name
        body = "\n".join(rest).strip()
        assert body.endswith(";") and body.count(";") == 1, path.name
