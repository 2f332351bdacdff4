"""A process in its own network namespace, moved into a real cgroup v2 directory laid out like the
kubelet's (systemd driver, containerd), makes ``--netns all`` stamp that pod uid and container id."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import collector_argv, netns_unavailable_reason, read_jsonl, skip_or_fail
from .netns_scene import HOST_TIMEOUT, UnnamedNetns, inode

pytestmark = pytest.mark.root

POD_UID = "5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f"
CONTAINER_ID = secrets.token_hex(32)
LISTENER = "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print('up', flush=True); " \
           "sys.stdin.read()"


def cgroup2_mount() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts)."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[2] == "cgroup2":
            return Path(parts[1])
    return None


@pytest.fixture
def kubelet_cgroup() -> Iterator[Path]:
    """<cgroup2>/xtcp-i10-test-<pid>/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/
    cri-containerd-<id>.scope, removed afterwards."""
    reason = netns_unavailable_reason()
    if reason:
        skip_or_fail(reason)
    mount = cgroup2_mount()
    if mount is None:
        skip_or_fail("no cgroup v2 hierarchy is mounted")
        raise AssertionError  # unreachable
    top = mount / f"xtcp-i10-test-{os.getpid()}"
    leaf = (top / "kubepods.slice" / "kubepods-burstable.slice" /
            f"kubepods-burstable-pod{POD_UID.replace('-', '_')}.slice" / f"cri-containerd-{CONTAINER_ID}.scope")
    try:
        leaf.mkdir(parents=True)
    except OSError as exc:
        skip_or_fail(f"cannot create a cgroup under {mount}: {exc}")
    try:
        yield leaf
    finally:
        for d in [leaf, *leaf.parents]:
            if d == mount:
                break
            with contextlib.suppress(OSError):
                d.rmdir()


def test_kubelet_shaped_cgroup_yields_pod_uid_and_container(kubelet_cgroup: Path, tmp_path: Path) -> None:
    """The namespace's records carry the pod uid and container id of its process's cgroup, runtime containerd."""
    holder = UnnamedNetns()
    try:
        proc = holder.popen([sys.executable, "-c", LISTENER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        (kubelet_cgroup / "cgroup.procs").write_text(str(holder.pid))
        deadline = time.monotonic() + 10
        while CONTAINER_ID not in Path(f"/proc/{holder.pid}/cgroup").read_text():
            assert time.monotonic() < deadline, "the process did not move into the cgroup"
            time.sleep(0.05)
        out = tmp_path / "out.jsonl"
        subprocess.run([*collector_argv(), "--netns", "all", "--once", *HOST_TIMEOUT,
                        "--sink", f"file://{out}?format=jsonl",
                        "--metrics-listen", ""], check=True, timeout=120)
        ours = [r for r in read_jsonl(out) if r.get("netns_inode") == inode(holder.path)]
        pid = holder.pid
    finally:
        holder.delete()
    assert len(ours) == 1  # the listener
    rec = ours[0]
    assert (rec["netns"], rec["pod_uid"], rec["container_id"], rec["container_runtime"]) == (
        f"pid:{pid}", POD_UID, CONTAINER_ID, "containerd")
    assert "pod_name" not in rec  # no runtime label file for it: the name is not guessed
