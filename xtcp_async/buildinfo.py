"""The git commit this copy of xtcp_async was built from, for ``--version`` and ``xtcp_build``.

Two sources, first hit wins:

1. ``xtcp_async/_commit.py``, written into the wheel by ``setup.py`` at build time (``pip install .``
   from a clone, ``pip wheel`` in the Docker build, where ``XTCP_BUILD_COMMIT`` supplies it because
   the build context has no ``.git``). It is never in the source tree, so an editable install
   cannot pick up a stale one.
2. ``git`` run against the source tree this module sits in (an editable install or a checkout run
   with ``python -m xtcp_async``), so the answer follows the checkout as it changes.

Neither found (a wheel built from an exported tarball, no git on PATH): ``unknown``, never an error.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

UNKNOWN = "unknown"
#: Digits of the commit hash shown (git's own short forms are 7–12).
SHORT = 12


def commit_from_git(tree: Path) -> str | None:
    """``HEAD`` of the git checkout at ``tree`` (``-dirty`` appended when files differ), or None."""
    if not (tree / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(tree), "rev-parse", f"--short={SHORT}", "HEAD"],
                              capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not head:
        return None
    return f"{head}-dirty" if dirty else head


@functools.cache
def git_commit() -> str:
    """The commit this package was built from (see the module docstring), or ``unknown``."""
    try:
        baked = importlib.import_module("xtcp_async._commit")
    except ImportError:
        pass
    else:
        value = str(getattr(baked, "COMMIT", "")).strip()
        if value:
            return value
    return commit_from_git(Path(__file__).resolve().parent.parent) or UNKNOWN


def version_line() -> str:
    """What ``xtcp-async --version`` prints."""
    from xtcp_async import __version__

    return f"xtcp-async {__version__} (commit {git_commit()})"


class VersionAction(argparse.Action):
    """``--version``: like argparse's own, but the commit is looked up only when the flag is given."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: Any = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default,
                         help=help or "print the version and the git commit it was built from, then exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> NoReturn:
        print(version_line())  # stdout, like argparse's own version action (exit()'s message goes to stderr)
        parser.exit(0)
