"""Specifications for docker/k8s/daemonset-all-netns.yaml: --netns all with what it needs
(hostPID, CAP_SYS_ADMIN and CAP_SYS_PTRACE, /run/netns), args accepted by the real CLI."""

from __future__ import annotations

from typing import Any

import yaml

from tests.unit.ops.test_deploy_files import (
    DOCKER,
    ApplyEnv,
    accepted,
    container_env,  # noqa: F401  (the fixture, used by name)
    expand,
    k8s_env,
)
from xtcp_async.netns.select import NetnsSelection


def daemonset() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((DOCKER / "k8s" / "daemonset-all-netns.yaml").read_text()) if d]
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    assert isinstance(ds, dict)
    return ds


def test_args_select_every_namespace_and_are_accepted(container_env: ApplyEnv) -> None:  # noqa: F811
    """The args pass the real parser and config, and select --netns all."""
    (container,) = daemonset()["spec"]["template"]["spec"]["containers"]
    env = k8s_env(container)
    container_env(env)
    cfg = accepted([expand(a, env) for a in container["args"]])
    assert cfg.poll.netns == NetnsSelection("all")


def test_pod_has_host_pid_network_and_only_the_two_capabilities(container_env: ApplyEnv) -> None:  # noqa: F811
    """hostPID and hostNetwork, root with ALL dropped but SYS_ADMIN and SYS_PTRACE, no escalation, limits."""
    pod = daemonset()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["hostPID"] is True and pod["hostNetwork"] is True
    assert pod["securityContext"]["runAsUser"] == 0  # added capabilities reach root only
    caps = container["securityContext"]["capabilities"]
    assert caps["drop"] == ["ALL"] and sorted(caps["add"]) == ["SYS_ADMIN", "SYS_PTRACE"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    env = k8s_env(container)
    container_env(env)
    cfg = accepted([expand(a, env) for a in container["args"]])
    assert pod["terminationGracePeriodSeconds"] > cfg.settings.shutdown_grace + cfg.poll.poll_timeout_s


def test_run_netns_and_runtime_state_are_mounted_read_only() -> None:
    """/run/netns (names, with host-to-container propagation) and the runtimes' state are read-only mounts."""
    pod = daemonset()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert set(mounts) == {"/run/netns", "/run/containerd", "/run/containers"}
    assert all(m["readOnly"] for m in mounts.values())
    assert mounts["/run/netns"]["mountPropagation"] == "HostToContainer"
    paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]}
    assert {paths[m["name"]] for m in mounts.values()} == set(mounts)
