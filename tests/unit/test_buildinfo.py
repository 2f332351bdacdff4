"""`xtcp-async --version` names the git commit, from a checkout, a wheel built from a clone, and the
Docker build's wheel (no .git in its context, the commit passed as XTCP_BUILD_COMMIT)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from xtcp_async import __version__
from xtcp_async.buildinfo import UNKNOWN, git_commit

ROOT = Path(__file__).resolve().parents[2]
#: What the Docker build context holds (docker/Dockerfile.dockerignore) plus the build hook.
SOURCES = ("pyproject.toml", "setup.py", "README.md", "xtcp_async")


def git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True, check=True).stdout.strip()


def version_of(python_path: Path | None = None) -> str:
    """What `python -m xtcp_async --version` prints, importing xtcp_async from ``python_path`` if given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XTCP_")}
    code = "import sys, xtcp_async; assert xtcp_async.__file__.startswith(sys.argv[1]), xtcp_async.__file__"
    if python_path is not None:
        env["PYTHONPATH"] = str(python_path)
        subprocess.run([sys.executable, "-c", code, str(python_path)], env=env, check=True, cwd="/")
    out = subprocess.run([sys.executable, "-m", "xtcp_async", "--version"], env=env, cwd="/",
                         capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip()


def export_tree(dest: Path) -> Path:
    """A copy of the files a build needs, without .git (like the Docker build context)."""
    dest.mkdir()
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "_commit.py"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def build_and_install(tree: Path, target: Path, env: dict[str, str] | None = None) -> str:
    """`pip wheel` the tree (with build isolation, as `pip install .` does), install it into
    ``target``; return the baked _commit.py text."""
    out = tree.parent / f"{tree.name}-dist"
    build_env = {k: v for k, v in os.environ.items() if not k.startswith("XTCP_")} | (env or {})
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(tree)],
                   env=build_env, check=True, timeout=300, capture_output=True)
    (wheel,) = out.glob("xtcp_async-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        baked = zf.read("xtcp_async/_commit.py").decode()
        zf.extractall(target)
    return baked


def test_checkout_prints_version_and_head_commit() -> None:
    """In this checkout (editable install), --version prints the version and git's HEAD."""
    head = git(ROOT, "rev-parse", "--short=12", "HEAD")
    line = version_of()
    assert line.startswith(f"xtcp-async {__version__} (commit {head}")
    assert git_commit().removesuffix("-dirty") == head


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_wheel_built_from_a_fresh_clone_carries_the_clone_commit(tmp_path: Path) -> None:
    """`pip install .` in a fresh clone: the wheel has the clone's HEAD baked in, and the installed
    package prints it without any .git nearby."""
    tree = export_tree(tmp_path / "clone")
    git(tree, "init", "-q")
    git(tree, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "add", "-A")
    git(tree, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "snapshot")
    head = git(tree, "rev-parse", "--short=12", "HEAD")
    baked = build_and_install(tree, tmp_path / "site")
    assert f"COMMIT = '{head}'" in baked
    assert version_of(tmp_path / "site") == f"xtcp-async {__version__} (commit {head})"
    # /metrics needs no extra: prometheus-client is an unconditional requirement of the wheel.
    (metadata,) = (tmp_path / "site").glob("xtcp_async-*.dist-info/METADATA")
    requires = [line for line in metadata.read_text().splitlines() if line.startswith("Requires-Dist: prometheus")]
    assert requires == ["Requires-Dist: prometheus-client==0.23.1"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_wheel_built_without_git_takes_the_commit_from_the_build_argument(tmp_path: Path) -> None:
    """The Docker build has no .git: XTCP_BUILD_COMMIT is baked in; without it the commit is
    'unknown' rather than an error."""
    tree = export_tree(tmp_path / "context")
    baked = build_and_install(tree, tmp_path / "site", {"XTCP_BUILD_COMMIT": "0123456789ab"})
    assert "COMMIT = '0123456789ab'" in baked
    assert version_of(tmp_path / "site") == f"xtcp-async {__version__} (commit 0123456789ab)"
    shutil.rmtree(tree / "build", ignore_errors=True)
    bare = build_and_install(tree, tmp_path / "site2")
    assert f"COMMIT = '{UNKNOWN}'" in bare
