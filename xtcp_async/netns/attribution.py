"""Container and pod identity from a cgroup path and from a runtime's label file (pure: text in).

What the kubelet's layouts give (cgroup v1 and v2, both cgroup drivers)::

    systemd:  /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/
              cri-containerd-<64 hex>.scope        (crio-<id>.scope, docker-<id>.scope)
    cgroupfs: /kubepods/burstable/pod<uid>/<64 hex>  (guaranteed pods sit right under kubepods)

The pod uid and the container id are in the path; the runtime is in the systemd scope's prefix
(cgroupfs paths do not name it). The pod's *name* and *namespace* are not in any cgroup path:
they come from the runtime's per-container label file when it is readable (see
:func:`label_files`), else they stay empty. Nothing here talks to the API server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

_UID = r"[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}"
#: kubepods-burstable-pod<uid>.slice (systemd) or pod<uid> (cgroupfs).
_POD = re.compile(rf"^(?:[a-z]+-)*pod({_UID})(?:\.slice)?$")
#: A container's cgroup: <prefix>-<id>.scope (systemd) or the bare id (cgroupfs, /docker/<id>).
_CONTAINER = re.compile(r"^(?:(docker|cri-containerd|crio|libpod)-)?([0-9a-f]{64})(?:\.scope)?$")
_RUNTIME_BY_PREFIX = {"docker": "docker", "cri-containerd": "containerd", "crio": "cri-o", "libpod": "podman"}
#: Parent cgroups that name the runtime on cgroupfs layouts outside Kubernetes.
_RUNTIME_BY_PARENT = {"docker": "docker", "libpod_parent": "podman"}


@dataclass(frozen=True)
class Attribution:
    """What a namespace's cgroup (and label file) say about whose it is; '' when unknown."""

    container_id: str = ""
    container_runtime: str = ""
    pod_uid: str = ""
    pod_name: str = ""
    pod_namespace: str = ""


NOTHING = Attribution()


def parse_cgroup_path(path: str) -> Attribution:
    """Pod uid, container id and runtime from one cgroup path (NOTHING when it has neither)."""
    segments = [s for s in path.split("/") if s]
    in_kubepods = any("kubepods" in s for s in segments)
    pod_uid = ""
    container_id = runtime = ""
    for i, seg in enumerate(segments):
        m = _POD.match(seg)
        if m and in_kubepods:
            pod_uid = m.group(1).replace("_", "-")
            continue
        m = _CONTAINER.match(seg)
        if m:
            # The innermost container wins (nested runtimes: kind, docker-in-docker).
            container_id = m.group(2)
            prefix = m.group(1)
            parent = segments[i - 1] if i else ""
            runtime = _RUNTIME_BY_PREFIX[prefix] if prefix else _RUNTIME_BY_PARENT.get(parent, "")
    return Attribution(container_id=container_id, container_runtime=runtime, pod_uid=pod_uid)


def parse_proc_cgroup(text: str) -> Attribution:
    """The attribution in a ``/proc/PID/cgroup`` file's text.

    Lines are ``hierarchy:controllers:path``. The cgroup v2 line (``0::``) is tried first, then
    the v1 ones in file order; the first path that names a pod or a container is used (on a
    hybrid host the v2 path may be ``/`` while the v1 controllers carry the kubelet's layout).
    """
    paths: list[str] = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            paths.insert(0, parts[2])
        else:
            paths.append(parts[2])
    for path in paths:
        found = parse_cgroup_path(path)
        if found.container_id or found.pod_uid:
            return found
    return NOTHING


#: Annotation/label keys that carry the pod, by runtime (CRI sandbox annotations, kubelet labels).
_POD_KEYS = (
    ("io.kubernetes.cri.sandbox-name", "io.kubernetes.cri.sandbox-namespace", "io.kubernetes.cri.sandbox-uid"),
    ("io.kubernetes.pod.name", "io.kubernetes.pod.namespace", "io.kubernetes.pod.uid"),
)


def pod_from_labels(labels: Mapping[str, Any]) -> tuple[str, str, str]:
    """(pod name, pod namespace, pod uid) from OCI annotations or container labels ('' when absent)."""
    for name_key, ns_key, uid_key in _POD_KEYS:
        name = labels.get(name_key)
        if isinstance(name, str) and name:
            ns, uid = labels.get(ns_key), labels.get(uid_key)
            return name, ns if isinstance(ns, str) else "", uid if isinstance(uid, str) else ""
    return "", "", ""


def labels_in_file(text: str) -> Mapping[str, Any]:
    """The annotation/label map of a label file: an OCI ``config.json`` (``annotations``) or a
    docker ``config.v2.json`` (``Config.Labels``); empty when the text is neither."""
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}
    found = doc.get("annotations")
    if isinstance(found, dict):
        return found
    config = doc.get("Config")
    labels = config.get("Labels") if isinstance(config, dict) else None
    return labels if isinstance(labels, dict) else {}


def label_files(found: Attribution) -> list[str]:
    """Host paths where the container's runtime keeps its labels (read if the collector can)."""
    cid = found.container_id
    if not cid:
        return []
    return {
        "containerd": [f"/run/containerd/io.containerd.runtime.v2.task/k8s.io/{cid}/config.json"],
        "cri-o": [f"/run/containers/storage/overlay-containers/{cid}/userdata/config.json"],
        "docker": [f"/var/lib/docker/containers/{cid}/config.v2.json"],
        # cgroupfs layouts do not name the runtime: try each.
        "": [f"/run/containerd/io.containerd.runtime.v2.task/k8s.io/{cid}/config.json",
             f"/run/containers/storage/overlay-containers/{cid}/userdata/config.json",
             f"/var/lib/docker/containers/{cid}/config.v2.json"],
    }.get(found.container_runtime, [])


def with_labels(found: Attribution, labels: Mapping[str, Any]) -> Attribution:
    """``found`` completed with the pod name/namespace (and uid, when the path lacked it) of ``labels``."""
    name, namespace, uid = pod_from_labels(labels)
    if not name:
        return found
    return replace(found, pod_name=name, pod_namespace=namespace, pod_uid=found.pod_uid or uid)
