"""Where the compiled core cannot be imported or is switched off, the numpy paths are chosen and say why."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = "from xtcp_async import native; print(native.PATH); print(native.WHY_NOT)"


def _path_in_child(prelude: str, env: dict[str, str]) -> list[str]:
    out = subprocess.run([sys.executable, "-c", prelude + CODE], capture_output=True, text=True, check=True,
                         env={**os.environ, **env}, timeout=60).stdout
    return out.splitlines()


def test_a_core_that_cannot_be_imported_falls_back_to_numpy() -> None:
    """An ImportError of xtcp_async._fastcore picks the numpy path and keeps the reason."""
    path, why = _path_in_child("import sys; sys.modules['xtcp_async._fastcore'] = None; ", {})
    assert path == "numpy"
    assert "unavailable" in why


def test_xtcp_native_0_switches_the_core_off() -> None:
    """XTCP_NATIVE=0 picks the numpy path even where the core is built."""
    path, why = _path_in_child("", {"XTCP_NATIVE": "0"})
    assert path == "numpy"
    assert "XTCP_NATIVE" in why
