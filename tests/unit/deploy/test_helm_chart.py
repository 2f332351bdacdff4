"""deploy/helm/xtcp-async: passes the real `helm lint`, renders with the real `helm template` into
manifests that decode strictly as Kubernetes objects (kubernetes-validate's schemas, unknown
fields rejected; hand-written checks for the Prometheus Operator kinds), and every toggle does
what values.yaml says. docker/k8s/daemonset.yaml is this chart rendered with docker/k8s/values.yaml."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.tools import go_tool, run
from tests.unit.ops.test_deploy_files import ApplyEnv, accepted, container_env, docker_image, expand, k8s_env
from xtcp_async.cli import build_parser
from xtcp_async.ops.http import parse_listen

__all__ = ["container_env"]  # the fixture, used by name below

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "deploy" / "helm" / "xtcp-async"
EXAMPLE_VALUES = ROOT / "docker" / "k8s" / "values.yaml"
#: The oldest Kubernetes version the manifests are checked against (and kubectl's skew covers newer).
KUBERNETES = "1.30"
MONITORING_KINDS = {"ServiceMonitor", "PodMonitor"}


def render(*sets: str, values: Path | None = EXAMPLE_VALUES, expect_ok: bool = True) -> list[dict[str, Any]]:
    """`helm template` of the chart with the example values and ``--set`` overrides."""
    args: list[str | Path] = ["template", "xtcp-async", CHART, "--namespace", "xtcp"]
    if values is not None:
        args += ["-f", values]
    for s in sets:
        args += ["--set", s]
    proc = run(go_tool("helm"), *args)
    if not expect_ok:
        assert proc.returncode != 0
        raise subprocess.CalledProcessError(proc.returncode, "helm template", proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {d["kind"]: d for d in docs}
    assert len(out) == len(docs), "one object per kind"
    return out


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = by_kind(docs)["DaemonSet"]["spec"]["template"]["spec"]
    return spec


def check_monitor(doc: dict[str, Any], pod_labels: dict[str, str]) -> None:
    """The Prometheus Operator CRDs' fields this chart uses (monitoring.coreos.com/v1), strictly."""
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(doc["metadata"]) <= {"name", "namespace", "labels", "annotations"}
    spec = doc["spec"]
    list_key = "endpoints" if doc["kind"] == "ServiceMonitor" else "podMetricsEndpoints"
    assert set(spec) == {"jobLabel", "selector", list_key}
    assert set(spec["selector"]) == {"matchLabels"}
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()
    for ep in spec[list_key]:
        assert set(ep) <= {"port", "path", "interval", "scheme", "scrapeTimeout"}
        assert ep["path"] == "/metrics" and re.fullmatch(r"\d+[smh]", ep["interval"])


def check_strictly(docs: list[dict[str, Any]]) -> None:
    labels = pod_spec_labels(docs)
    for doc in docs:
        if doc["kind"] in MONITORING_KINDS:
            check_monitor(doc, labels)
        else:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def pod_spec_labels(docs: list[dict[str, Any]]) -> dict[str, str]:
    labels: dict[str, str] = by_kind(docs)["DaemonSet"]["spec"]["template"]["metadata"]["labels"]
    return labels


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (c,) = pod_spec(docs)["containers"]
    assert isinstance(c, dict)
    return c


def test_helm_lint_passes_with_the_example_values() -> None:
    """`helm lint --strict` accepts the chart with docker/k8s/values.yaml."""
    proc = run(go_tool("helm"), "lint", "--strict", CHART, "-f", EXAMPLE_VALUES)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize(("sets", "message"), [
    ([], "image.repository is required"),
    (["image.repository=r.example/x"], "sinks: give at least one sink URL"),
    (["image.repository=r.example/x", "sinks={null://}", "location.fromNodeLabel=example.com/pop"],
     "location.fromNodeLabel: \"example.com/pop\" is not copied onto pods"),
])
def test_site_specific_values_are_required_not_defaulted(sets: list[str], message: str) -> None:
    """The chart's own values.yaml has no placeholder image or broker, and a node label Kubernetes
    does not copy onto pods is refused: rendering fails with a message naming the value."""
    with pytest.raises(subprocess.CalledProcessError) as err:
        render(*sets, values=None, expect_ok=False)
    assert message in err.value.stderr


@pytest.mark.parametrize("sets", [
    [],
    ["netns.all=true"],
    ["metrics.serviceMonitor.enabled=true"],
    ["metrics.podMonitor.enabled=true", "location.value=", "location.fromNodeLabel=topology.kubernetes.io/zone"],
    ["priorityClassName=system-node-critical", "serviceAccount.create=false"],
])
def test_rendered_manifests_decode_strictly_as_kubernetes_objects(sets: list[str]) -> None:
    """Every rendered object validates against Kubernetes' schema with unknown fields rejected."""
    check_strictly(render(*sets))


def test_strict_decoding_rejects_a_misspelled_field() -> None:
    """The check above can fail: a field Kubernetes does not know is an error."""
    ds = by_kind(render())["DaemonSet"]
    ds["spec"]["template"]["spec"]["automountServiceAcountToken"] = False
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ds, KUBERNETES, strict=True)


def test_no_token_no_required_priority_class_no_capabilities_by_default() -> None:
    """No service-account token in the pod, no priority class unless asked, non-root, all
    capabilities dropped, host network with cluster DNS."""
    docs = render()
    pod = pod_spec(docs)
    assert pod["automountServiceAccountToken"] is False
    assert by_kind(docs)["ServiceAccount"]["automountServiceAccountToken"] is False
    assert "priorityClassName" not in pod
    assert "hostPID" not in pod
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["securityContext"]["runAsNonRoot"] is True
    sc = container(docs)["securityContext"]
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert pod_spec(render("priorityClassName=system-node-critical"))["priorityClassName"] == "system-node-critical"


def test_netns_mode_adds_the_flag_host_pid_and_the_two_capabilities() -> None:
    """netns.all: --netns=all, hostPID, root with SYS_ADMIN and SYS_PTRACE; nothing else changes."""
    docs = render("netns.all=true")
    pod, c = pod_spec(docs), container(docs)
    assert "--netns=all" in c["args"]
    assert pod["hostPID"] is True
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["SYS_ADMIN", "SYS_PTRACE"]}
    assert pod["securityContext"]["runAsUser"] == 0
    assert [a for a in c["args"] if a != "--netns=all"] == container(render())["args"]


def test_args_are_accepted_by_the_real_cli(container_env: ApplyEnv) -> None:
    """The container's args, after $(VAR) expansion, pass the CLI parser and config validation
    (--netns is left out while this CLI does not have it yet)."""
    for sets in ([], ["netns.all=true"], ["extraArgs={--states=established}"]):
        c = container(render(*sets))
        env = k8s_env(c)
        container_env({**docker_image()[1].env(), **env})
        args = [expand(a, env) for a in c["args"]]
        if "--netns" not in build_parser().format_help():
            args = [a for a in args if not a.startswith("--netns")]
        cfg = accepted(args)
        assert cfg.settings.location == "pop-example-1"
        assert cfg.settings.hostname == env["NODE_NAME"]


def test_metrics_port_value_moves_listener_probes_and_annotations(container_env: ApplyEnv) -> None:
    """metrics.port sets the listen address, the named container port, probes and scrape annotations."""
    docs = render("metrics.port=9200", "metrics.serviceMonitor.enabled=true")
    c = container(docs)
    env = k8s_env(c)
    container_env(env)
    cfg = accepted([expand(a, env) for a in c["args"]])
    assert parse_listen(cfg.settings.metrics_listen)[1] == 9200
    assert c["ports"] == [{"name": "metrics", "containerPort": 9200, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"]["port"] == c["readinessProbe"]["httpGet"]["port"] == "metrics"
    annotations = by_kind(docs)["DaemonSet"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9200"
    assert by_kind(docs)["Service"]["spec"]["ports"][0]["port"] == 9200


def test_location_comes_from_a_value_or_the_pods_topology_label() -> None:
    """location.value is a literal; fromNodeLabel reads the label through the downward API."""
    fixed = {e["name"]: e for e in container(render())["env"]}["XTCP_LOCATION"]
    assert fixed == {"name": "XTCP_LOCATION", "value": "pop-example-1"}
    docs = render("location.value=", "location.fromNodeLabel=topology.kubernetes.io/zone")
    env = {e["name"]: e for e in container(docs)["env"]}["XTCP_LOCATION"]
    assert env["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.labels['topology.kubernetes.io/zone']"}}
    assert "XTCP_LOCATION" not in {e["name"] for e in container(render("location.value="))["env"]}


def test_monitor_toggles_render_only_what_they_name() -> None:
    """Default: no Service or monitors; serviceMonitor: headless Service + ServiceMonitor; podMonitor: PodMonitor."""
    assert set(by_kind(render())) == {"ServiceAccount", "DaemonSet"}
    sm = by_kind(render("metrics.serviceMonitor.enabled=true"))
    assert set(sm) == {"ServiceAccount", "DaemonSet", "Service", "ServiceMonitor"}
    assert sm["Service"]["spec"]["clusterIP"] == "None"
    assert sm["ServiceMonitor"]["spec"]["endpoints"][0]["port"] == sm["Service"]["spec"]["ports"][0]["name"]
    pm = by_kind(render("metrics.podMonitor.enabled=true", "metrics.podMonitor.labels.release=kps"))
    assert set(pm) == {"ServiceAccount", "DaemonSet", "PodMonitor"}
    assert pm["PodMonitor"]["metadata"]["labels"]["release"] == "kps"


def test_grace_period_covers_the_flush_and_a_poll() -> None:
    """terminationGracePeriodSeconds exceeds --shutdown-grace plus --poll-timeout."""
    docs = render("shutdownGraceSeconds=20", "poll.timeoutSeconds=8", "poll.intervalSeconds=30")
    assert pod_spec(docs)["terminationGracePeriodSeconds"] > 20 + 8


def test_static_daemonset_is_the_chart_rendered_with_the_example_values() -> None:
    """docker/k8s/daemonset.yaml = Namespace + `helm template` with docker/k8s/values.yaml
    (scripts/render_k8s.sh), so the placeholders are only in the values file."""
    committed = [d for d in yaml.safe_load_all((ROOT / "docker" / "k8s" / "daemonset.yaml").read_text()) if d]
    assert committed[0] == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "xtcp"}}
    assert committed[1:] == render(), "docker/k8s/daemonset.yaml is stale: run scripts/render_k8s.sh"
    for doc in committed:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
