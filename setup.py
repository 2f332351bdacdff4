"""Build hooks (metadata is in pyproject.toml): the git commit baked into the wheel, and the
compiled hot path.

1. xtcp_async/_commit.py. Why a generated module and not a git lookup at run time only: an
   installed wheel (``pip install .``, the Docker image) has no .git beside it. The commit comes from
   ``XTCP_BUILD_COMMIT`` when set (the Docker build passes it as a build argument, since .git is not
   in its context), else from git in the source tree being built. Editable installs skip this:
   xtcp_async/buildinfo.py asks git directly there, so the answer follows the checkout.
2. xtcp_async._fastcore (issue 13), ``optional=True``: where no C compiler is found the install
   still succeeds and the numpy paths run (xtcp_async/native.py warns once at start-up and reports
   which path is in use).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

sys.path.insert(0, str(Path(__file__).resolve().parent))
from xtcp_async.buildinfo import commit_from_git


class BuildPyWithCommit(build_py):
    """build_py, then write xtcp_async/_commit.py into the build directory (never the source tree)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        commit = os.environ.get("XTCP_BUILD_COMMIT", "").strip()
        commit = commit or commit_from_git(Path(__file__).resolve().parent) or "unknown"
        target = Path(self.build_lib) / "xtcp_async" / "_commit.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f'"""Written by setup.py at build time."""\n\nCOMMIT = {commit!r}\n')


setup(
    cmdclass={"build_py": BuildPyWithCommit},
    ext_modules=[
        Extension(
            "xtcp_async._fastcore",
            sources=["xtcp_async/_ext/fastcore.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                "-Wno-missing-field-initializers", "-fno-strict-aliasing"],
            optional=True,
        ),
    ],
)
