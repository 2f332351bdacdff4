"""`python -m xtcp_async.ops.healthcheck`: exit 0 if the local listener answers 200 on a path.

For the container HEALTHCHECK: the slim image has no curl, and a shell one-liner would have to
know the listen address. The address is the one the running service resolved: the probe reads the
service's own command line, environment and working directory from /proc (PID 1 in a container,
else the first xtcp-async process it can see) and runs them through the service's config loader,
so ``--metrics-listen`` in ``docker run ... IMAGE --metrics-listen ...`` wins over the image's
XTCP_METRICS_LISTEN exactly as it does in the service. Only when no such process is readable does
it fall back to XTCP_METRICS_LISTEN (default 127.0.0.1:9088). A wildcard bind (0.0.0.0, ::, empty
host) is probed on loopback.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

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


def service_argv(cmdline: list[str]) -> list[str] | None:
    """The xtcp-async arguments in a process's argv (console script or ``python -m``), else None."""
    for i, word in enumerate(cmdline):
        if Path(word).name == "xtcp-async":
            return cmdline[i + 1:]
        if word == "-m" and i + 1 < len(cmdline) and cmdline[i + 1] in ("xtcp_async", "xtcp_async.cli"):
            return cmdline[i + 2:]
    return None


def _read_nul_list(path: Path) -> list[str]:
    return [w.decode(errors="replace") for w in path.read_bytes().split(b"\0") if w]


def find_service(proc: Path = Path("/proc")) -> int | None:
    """PID 1 if it runs xtcp-async (a container's entrypoint), else the lowest such PID we can read."""
    pids = sorted(int(p.name) for p in proc.iterdir() if p.name.isdigit())
    for pid in sorted(pids, key=lambda p: p != 1):
        if pid == os.getpid():
            continue
        try:
            if service_argv(_read_nul_list(proc / str(pid) / "cmdline")) is not None:
                return pid
        except OSError:
            continue
    return None


def listen_of(pid: int, proc: Path = Path("/proc")) -> str:
    """The --metrics-listen the service running as ``pid`` resolved from its flags, XTCP_* environment
    and config file (same precedence, same loader); OSError if its /proc entries are unreadable,
    ValueError if it is not xtcp-async or its configuration does not load."""
    from xtcp_async.cli import _flags, build_parser
    from xtcp_async.config import load_config
    from xtcp_async.errors import ConfigError

    argv = service_argv(_read_nul_list(proc / str(pid) / "cmdline"))
    if argv is None:
        raise ValueError(f"process {pid} is not xtcp-async")
    env = dict(w.partition("=")[::2] for w in _read_nul_list(proc / str(pid) / "environ"))
    cwd = (proc / str(pid) / "cwd").resolve()
    try:
        flags, config_file = _flags(build_parser().parse_args(argv))
    except SystemExit:
        raise ValueError(f"process {pid}'s arguments do not parse") from None
    config_file = config_file or env.get("XTCP_CONFIG")
    if config_file:
        config_file = str(cwd / config_file)  # absolute stays absolute; relative is the service's cwd
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({k: v for k, v in env.items() if k.startswith("XTCP_")})
    try:
        return load_config(flags, config_file).settings.metrics_listen
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    finally:
        os.environ.clear()
        os.environ.update(saved)


def resolve_listen(pid: int | None) -> tuple[str, str]:
    """(listen address, where it came from) for the probe."""
    target = pid if pid is not None else find_service()
    if target is not None:
        try:
            return listen_of(target), f"process {target}"
        except (OSError, ValueError) as exc:
            if pid is not None:
                raise ValueError(f"cannot read the listen address of process {pid}: {exc}") from None
    return os.environ.get("XTCP_METRICS_LISTEN") or DEFAULT_LISTEN, "XTCP_METRICS_LISTEN or the default"


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
    p.add_argument("--listen", help="probe this HOST:PORT instead of the running service's --metrics-listen")
    p.add_argument("--pid", type=int, help="the service's process (default: PID 1 if it is xtcp-async, "
                   "else the first xtcp-async process visible)")
    p.add_argument("--path", default="/healthz", help="/healthz (default) or /readyz")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    ns = p.parse_args(argv)
    listen = ns.listen
    if not listen:
        try:
            listen, source = resolve_listen(ns.pid)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 1
        if not listen:
            print(f"the metrics listener is off (--metrics-listen is empty, from {source})", file=sys.stderr)
            return 1
    ok, line = check(probe_url(listen, ns.path), ns.timeout)
    print(line, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
