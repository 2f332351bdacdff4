"""`python -m xtcp_async.ops.healthcheck`: exit 0 if the local listener answers 200 on a path.

For the container HEALTHCHECK: the slim image has no curl, and a shell one-liner would have to
know the listen address. This reads it the way the service does (XTCP_METRICS_LISTEN, default
127.0.0.1:9088) and turns a wildcard bind (0.0.0.0, ::, empty host) into loopback.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

DEFAULT_LISTEN = "127.0.0.1:9088"


def probe_url(listen: str, path: str) -> str:
    """The URL to probe for a service listening on ``listen``."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def check(url: str, timeout_s: float) -> tuple[bool, str]:
    """(healthy, one line) for one GET of ``url``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body = resp.read(300).decode(errors="replace").strip()
            return resp.status == 200, f"{resp.status} {body}"
    except urllib.error.HTTPError as exc:
        return False, f"{exc.code} {exc.read(300).decode(errors='replace').strip()}"
    except (OSError, urllib.error.URLError) as exc:
        return False, f"no answer from {url}: {exc}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xtcp_async.ops.healthcheck", description=__doc__)
    p.add_argument("--listen", default=os.environ.get("XTCP_METRICS_LISTEN") or DEFAULT_LISTEN,
                   help="the service's --metrics-listen (default: $XTCP_METRICS_LISTEN or 127.0.0.1:9088)")
    p.add_argument("--path", default="/healthz", help="/healthz (default) or /readyz")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    ns = p.parse_args(argv)
    ok, line = check(probe_url(ns.listen, ns.path), ns.timeout)
    print(line, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
