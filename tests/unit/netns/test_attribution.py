"""Container and pod identity is read from the kubelet's and the runtimes' cgroup layouts and label files."""

from __future__ import annotations

import json

import pytest

from xtcp_async.netns.attribution import (
    NOTHING,
    Attribution,
    label_files,
    labels_in_file,
    parse_cgroup_path,
    parse_proc_cgroup,
    with_labels,
)

UID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
CID = "3f4e" * 16


@pytest.mark.parametrize(("path", "runtime"), [
    # systemd cgroup driver, cgroup v2 (kubelet ≥1.25 default), per QoS class and runtime
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID.replace('-', '_')}.slice/"
     f"cri-containerd-{CID}.scope", "containerd"),
    (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID.replace('-', '_')}.slice/"
     f"crio-{CID}.scope", "cri-o"),
    (f"/kubepods.slice/kubepods-pod{UID.replace('-', '_')}.slice/docker-{CID}.scope", "docker"),
    # cgroupfs driver: the runtime is not named
    (f"/kubepods/burstable/pod{UID}/{CID}", ""),
    (f"/kubepods/pod{UID}/{CID}", ""),
    # kind / nested kubelet
    (f"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
     f"kubelet-kubepods-besteffort-pod{UID.replace('-', '_')}.slice/cri-containerd-{CID}.scope", "containerd"),
])
def test_kubelet_layouts_yield_pod_uid_and_container(path: str, runtime: str) -> None:
    """Every kubelet cgroup layout gives the pod uid (dashed), the container id, and the runtime when named."""
    assert parse_cgroup_path(path) == Attribution(container_id=CID, container_runtime=runtime, pod_uid=UID)


@pytest.mark.parametrize(("path", "expected"), [
    (f"/system.slice/docker-{CID}.scope", Attribution(CID, "docker")),
    (f"/docker/{CID}", Attribution(CID, "docker")),
    (f"/machine.slice/libpod-{CID}.scope/container", Attribution(CID, "podman")),
    ("/user.slice/user-1000.slice/session-2.scope", NOTHING),
    ("/", NOTHING),
    # conmon is CRI-O's monitor, not the container
    (f"/kubepods.slice/kubepods-pod{UID.replace('-', '_')}.slice/crio-conmon-{CID}.scope",
     Attribution(pod_uid=UID)),
    # a pod-shaped name outside kubepods is not a pod
    (f"/system.slice/pod{UID}", NOTHING),
])
def test_other_paths(path: str, expected: Attribution) -> None:
    """Plain containers keep their id and runtime; paths without one yield nothing; look-alikes are not pods."""
    assert parse_cgroup_path(path) == expected


def test_v2_line_is_preferred_and_v1_used_when_v2_is_root() -> None:
    """A /proc/PID/cgroup text: the unified line wins; on a hybrid host whose v2 path is / a v1 line is used."""
    v2 = f"0::/kubepods.slice/kubepods-pod{UID.replace('-', '_')}.slice/cri-containerd-{CID}.scope\n"
    assert parse_proc_cgroup(f"12:pids:/other/{'ab' * 32}\n" + v2).container_id == CID
    hybrid = f"4:memory:/kubepods/burstable/pod{UID}/{CID}\n1:name=systemd:/\n0::/\n"
    assert parse_proc_cgroup(hybrid) == Attribution(CID, "", UID)
    assert parse_proc_cgroup("0::/\n") == NOTHING
    assert parse_proc_cgroup("garbage\n\n") == NOTHING


def test_label_files_give_pod_name_and_namespace() -> None:
    """containerd's and CRI-O's OCI annotations and docker's labels name the pod; junk names nothing."""
    found = Attribution(CID, "containerd", UID)
    containerd = json.dumps({"ociVersion": "1.1.0", "annotations": {
        "io.kubernetes.cri.sandbox-name": "web-7d4b9", "io.kubernetes.cri.sandbox-namespace": "shop",
        "io.kubernetes.cri.sandbox-uid": UID}})
    assert with_labels(found, labels_in_file(containerd)) == Attribution(CID, "containerd", UID, "web-7d4b9", "shop")
    crio = json.dumps({"annotations": {"io.kubernetes.pod.name": "db-0", "io.kubernetes.pod.namespace": "data",
                                       "io.kubernetes.pod.uid": UID}})
    crio_found = with_labels(Attribution(CID, "cri-o"), labels_in_file(crio))
    assert crio_found == Attribution(CID, "cri-o", UID, "db-0", "data")
    docker = json.dumps({"Config": {"Labels": {"io.kubernetes.pod.name": "x", "io.kubernetes.pod.namespace": "y"}}})
    assert with_labels(found, labels_in_file(docker)).pod_name == "x"
    for junk in ("not json", "[1, 2]", json.dumps({"annotations": {"other": "1"}})):
        assert with_labels(found, labels_in_file(junk)) == found


def test_label_file_paths_follow_the_runtime() -> None:
    """Each runtime's label file is looked up where it keeps it; an unnamed runtime tries all; no id, none."""
    assert label_files(Attribution(CID, "containerd")) == [
        f"/run/containerd/io.containerd.runtime.v2.task/k8s.io/{CID}/config.json"]
    assert len(label_files(Attribution(CID, ""))) == 3
    assert label_files(Attribution(pod_uid=UID)) == []
