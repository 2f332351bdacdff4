"""A chdb (ClickHouse in-process) session in a child process, driven by JSON lines on stdin.

Why a child process: chdb keeps one embedded server per process, and the Kafka engine resolves
``kafka_schema`` against the process's working directory (the stand-in for a server's
format_schema_path), so the test runs ClickHouse in its own process started in the schema
directory instead of changing the test runner's cwd or sharing its chdb state.

Protocol: one request per line, ``{"sql": ..., "params": {...}}``; one answer per line,
``{"ok": true, "data": <ClickHouse JSON output or null>}`` or ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def main(data_dir: str) -> int:
    from chdb import session

    s = session.Session(data_dir)
    try:
        for line in sys.stdin:
            request = json.loads(line)
            answer: dict[str, Any]
            try:
                out = s.query(request["sql"], "JSON", params=request.get("params") or None)
                text = str(out).strip()
                answer = {"ok": True, "data": json.loads(text) if text else None}
            except Exception as exc:  # every ClickHouse error goes back to the test as text
                answer = {"ok": False, "error": str(exc)}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
    finally:
        s.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
