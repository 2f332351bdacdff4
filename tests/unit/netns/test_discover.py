"""Discovery lists each namespace once, by inode, with its names and processes (on a made-up /proc and /run/netns)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xtcp_async.netns.discover import FoundNs, discover, ns_id
from xtcp_async.netns.select import NetnsSelection


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """proc: self and pid 1 share one namespace; pids 100 and 200 another (also named "blue");
    pid 300 a third; "red" is a name no process is in. Hard links stand in for nsfs inodes."""
    proc, run = tmp_path / "proc", tmp_path / "netns"
    run.mkdir()
    files = {}
    for pid in ("1", "100", "300"):
        (proc / pid / "ns").mkdir(parents=True)
        files[pid] = proc / pid / "ns" / "net"
        files[pid].write_text(pid)
    for alias, target in (("self", "1"), ("200", "100")):
        (proc / alias / "ns").mkdir(parents=True)
        os.link(files[target], proc / alias / "ns" / "net")
    os.link(files["100"], run / "blue")
    (run / "red").write_text("red")
    (proc / "not-a-pid").mkdir()
    return proc, run


def _by_label(found: dict[tuple[int, int], FoundNs]) -> dict[str, FoundNs]:
    return {f.label: f for f in found.values()}


def test_all_deduplicates_names_and_processes_by_inode(tree: tuple[Path, Path]) -> None:
    """--netns all: four namespaces; the named one carries its name and both its processes."""
    proc, run = tree
    d = discover(NetnsSelection("all"), run_netns=str(run), proc=str(proc))
    got = _by_label(d.namespaces)
    assert set(got) == {"pid:1", "blue", "pid:300", "red"}
    assert got["blue"].pids == [100, 200]
    assert got["blue"].paths(str(run), str(proc))[0] == f"{run}/blue"
    assert got["red"].pids == [] and got["red"].inode == ns_id(f"{run}/red")[1]
    assert [f.label for f in d.namespaces.values() if f.is_self] == ["pid:1"]
    assert d.unreadable_pids == 0


def test_self_is_only_the_own_namespace(tree: tuple[Path, Path]) -> None:
    """--netns self: just the collector's namespace, no scan."""
    proc, run = tree
    d = discover(NetnsSelection("self"), run_netns=str(run), proc=str(proc))
    assert [(f.is_self, f.pids, f.label.startswith("ino:")) for f in d.namespaces.values()] == [(True, [], True)]


def test_named_selection_reports_missing_names(tree: tuple[Path, Path]) -> None:
    """--netns blue,green: blue is found (no process scan), green is reported missing; self only on request."""
    proc, run = tree
    d = discover(NetnsSelection("named", ("blue", "green")), run_netns=str(run), proc=str(proc))
    assert [f.label for f in d.namespaces.values()] == ["blue"]
    assert d.missing_names == ["green"]
    d = discover(NetnsSelection("named", ("blue",), include_self=True), run_netns=str(run), proc=str(proc))
    assert sorted(f.is_self for f in d.namespaces.values()) == [False, True]


def test_no_run_netns_directory_means_no_names(tree: tuple[Path, Path], tmp_path: Path) -> None:
    """A host where `ip netns` was never used has no /run/netns: processes are still found."""
    proc, _ = tree
    d = discover(NetnsSelection("all"), run_netns=str(tmp_path / "absent"), proc=str(proc))
    assert sorted(f.label for f in d.namespaces.values()) == ["pid:1", "pid:100", "pid:300"]


def test_label_falls_back_from_name_to_pid_to_inode() -> None:
    """The netns text is the first name, else pid:<lowest pid>, else ino:<inode>."""
    assert FoundNs((1, 9), names=["a", "b"], pids=[5]).label == "a"
    assert FoundNs((1, 9), pids=[5, 7]).label == "pid:5"
    assert FoundNs((1, 9)).label == "ino:9"
