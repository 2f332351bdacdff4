"""The real promtool, helm and systemd-analyze for the deploy-file tests.

promtool and helm come from scripts/install_tools.sh (built from the Go module proxy, cached per
version like nsqd); a test that needs one installs it on first use. Where it cannot be had (no Go,
no registry) the test skips with the reason, except under CI, where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "scripts" / "install_tools.sh"


def _version(name: str) -> str:
    """The version install_tools.sh builds (its default, or the override in the environment)."""
    text = INSTALL.read_text()
    var = {"promtool": "PROMETHEUS_VERSION", "helm": "HELM_VERSION"}[name]
    default = text.split(f'{var}="${{{var}:-', 1)[1].split("}", 1)[0]
    return os.environ.get(var, default)


def go_tool(name: str) -> Path:
    """Path of ``name`` (promtool or helm), built and cached on first use."""
    cache = Path(os.environ.get("XTCP_CACHE_DIR", str(Path.home() / ".cache" / "xtcp_async")))
    binary = cache / f"{name}-{_version(name).removeprefix('v')}" / "bin" / name
    if not binary.exists():
        proc = subprocess.run(["bash", str(INSTALL), name], capture_output=True, text=True, timeout=1800,
                              check=False)
        if proc.returncode != 0 or not binary.exists():
            reason = f"{name} could not be built by scripts/install_tools.sh: {proc.stderr[-1500:]}"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason=reason)
    return binary


def system_tool(name: str) -> Path:
    """A tool from the system's packages (systemd-analyze): skip with the reason where it is absent."""
    found = shutil.which(name)
    if found is None:
        reason = f"{name} is not installed (Debian: apt-get install systemd)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason=reason)
    return Path(found)


def run(tool: Path, *args: str | Path, cwd: Path | None = None,
        timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tool), *map(str, args)], capture_output=True, text=True, timeout=timeout_s,
                          check=False, cwd=cwd)
