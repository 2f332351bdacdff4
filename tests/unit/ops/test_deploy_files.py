"""Specifications for docker/: every xtcp-async command line in the deployment files is accepted
by the real CLI parser and config validation, and ports and probe paths match the listener.

There is no Docker engine on the build machines, so this is what can be checked without one.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from xtcp_async.cli import _flags, build_parser
from xtcp_async.config import Config, load_config
from xtcp_async.ops.healthcheck import probe_url
from xtcp_async.ops.http import parse_listen
from xtcp_async.service import build_sinks

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "docker"
ApplyEnv = Callable[[dict[str, str]], None]

#: Stand-ins for values only Kubernetes knows (downward API).
FIELD_REF_VALUES = {"status.podIP": "10.0.0.7", "spec.nodeName": "node-a", "status.hostIP": "10.0.0.7"}


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]]

    def all(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for rest in self.all("ENV"):
            for word in shlex.split(rest):
                key, _, value = word.partition("=")
                out[key] = value
        return out


def dockerfile_stages(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages) of a Dockerfile; continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            stages.append(Stage(words[0], words[2] if len(words) > 2 else None, []))
        elif not stages and keyword == "ARG":
            key, _, value = rest.partition("=")
            args[key] = value
        else:
            stages[-1].instructions.append((keyword, rest.strip()))
    return args, stages


def docker_image() -> tuple[dict[str, str], Stage]:
    args, stages = dockerfile_stages((DOCKER / "Dockerfile").read_text())
    return args, stages[-1]


def exec_form(text: str) -> list[str]:
    value = json.loads(text)
    assert isinstance(value, list), f"use the exec (JSON) form: {text}"
    return [str(v) for v in value]


@pytest.fixture
def container_env(monkeypatch: pytest.MonkeyPatch) -> ApplyEnv:
    """Apply a container's environment to this process (XTCP_* only, the rest cleared)."""

    def apply(env: dict[str, str]) -> None:
        for name in list(os.environ):
            if name.startswith("XTCP_"):
                monkeypatch.delenv(name)
        for name, value in env.items():
            if name.startswith("XTCP_"):
                monkeypatch.setenv(name, value)

    return apply


def accepted(argv: list[str]) -> Config:
    """What `xtcp-async ARGV` would run with: the CLI parser, config validation, sink options."""
    ns = build_parser().parse_args(argv)
    flags, config_file = _flags(ns)
    cfg = load_config(flags, config_file)
    build_sinks(cfg)
    return cfg


# -- Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_one_slim_base() -> None:
    """Two stages on the same slim Python base; the final one copies only the built venv."""
    args, stages = dockerfile_stages((DOCKER / "Dockerfile").read_text())
    assert len(stages) >= 2
    bases = {s.base.replace("${PYTHON_IMAGE}", args.get("PYTHON_IMAGE", "")) for s in stages}
    assert len(bases) == 1
    assert re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*", bases.pop())
    final = stages[-1]
    assert final.all("COPY") == [f"--from={stages[0].name} /opt/xtcp /opt/xtcp"]


def test_final_image_has_no_build_tools_and_runs_as_non_root() -> None:
    """No compiler or package install in the final stage; a numeric non-root USER."""
    _, final = docker_image()
    for run in final.all("RUN"):
        assert not re.search(r"apt-get install|gcc|build-essential|pip install", run), run
    (user,) = final.all("USER")
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0


def test_build_stage_installs_the_wheel_with_its_extras() -> None:
    """The package goes in from the wheel built from this tree, with the broker and metrics extras."""
    _, stages = dockerfile_stages((DOCKER / "Dockerfile").read_text())
    build = " ".join(stages[0].all("RUN"))
    assert "pip wheel" in build
    assert re.search(r"pip install \"\$\(ls /dist/xtcp_async-\*\.whl\)\[kafka,nsq,metrics\]\"", build)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"kafka", "nsq", "metrics"} <= set(extras)


def test_entrypoint_is_the_console_script_and_the_default_command_is_valid(container_env: ApplyEnv) -> None:
    """ENTRYPOINT is xtcp-async (a console script of the project) and CMD is accepted by it."""
    _, final = docker_image()
    (entry,) = final.all("ENTRYPOINT")
    assert exec_form(entry) == ["xtcp-async"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["xtcp-async"] == "xtcp_async.cli:main"
    container_env(final.env())
    (cmd,) = final.all("CMD")
    accepted(exec_form(cmd))


def test_healthcheck_probes_healthz_on_the_exposed_metrics_port(container_env: ApplyEnv) -> None:
    """HEALTHCHECK hits /healthz where the image's listener is, and that port is EXPOSEd."""
    _, final = docker_image()
    env = final.env()
    container_env(env)
    (cmd,) = final.all("CMD")
    cfg = accepted(exec_form(cmd))
    host, port = parse_listen(cfg.settings.metrics_listen)
    assert host == "0.0.0.0", "inside a container the listener must be reachable from outside it"
    assert final.all("EXPOSE") == [str(port)]
    (check,) = final.all("HEALTHCHECK")
    probe = exec_form(check.split(" CMD ", 1)[1])
    assert probe[:3] == ["python", "-m", "xtcp_async.ops.healthcheck"]
    assert probe[probe.index("--path") + 1] == "/healthz"
    assert probe_url(env["XTCP_METRICS_LISTEN"], "/healthz") == f"http://127.0.0.1:{port}/healthz"
    # No fixed --listen: the probe resolves the running service's own flags (see test_healthcheck).
    assert "--listen" not in probe


def test_build_stage_bakes_the_commit_given_as_a_build_argument() -> None:
    """The context has no .git, so the build stage takes XTCP_BUILD_COMMIT and hands it to the wheel
    build (setup.py), and the build hook is in the context."""
    _, stages = dockerfile_stages((DOCKER / "Dockerfile").read_text())
    build = stages[0]
    assert any(a.startswith("XTCP_BUILD_COMMIT") for a in build.all("ARG"))
    (wheel_run,) = [r for r in build.all("RUN") if "pip wheel" in r]
    assert wheel_run.startswith('XTCP_BUILD_COMMIT="${XTCP_BUILD_COMMIT}" python -m pip wheel')
    assert any("setup.py" in c.split() for c in build.all("COPY"))
    assert "!setup.py" in (DOCKER / "Dockerfile.dockerignore").read_text().split()


def test_dockerignore_keeps_the_context_to_what_the_image_copies() -> None:
    """The build context excludes everything but pyproject, README and the package."""
    lines = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    assert lines[lines.index("*") + 1:][:3] == ["!pyproject.toml", "!README.md", "!xtcp_async/"]


# -- compose.yaml -------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return data


def xtcp_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that run the image's entrypoint (xtcp-async)."""
    return {name: svc for name, svc in doc["services"].items()
            if (svc.get("build", {}).get("dockerfile") == "docker/Dockerfile"
                or str(svc.get("image", "")).startswith("xtcp-async")) and "entrypoint" not in svc}


def test_compose_runs_nsqd_kafka_xtcp_and_a_consumer() -> None:
    """The demo has nsqd, a single-node KRaft Kafka, xtcp_async and a decoding consumer."""
    services = compose()["services"]
    assert {"nsqd", "kafka", "xtcp", "consumer"} <= set(services)
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka_env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{kafka_env['KAFKA_NODE_ID']}@kafka:9093"
    assert services["consumer"]["entrypoint"][:3] == ["python", "-m", "xtcp_async.ops.consume"]


def test_compose_command_lines_are_accepted_and_publish_to_both_brokers(container_env: ApplyEnv) -> None:
    """Every xtcp-async command in compose.yaml passes the real parser and config, with an NSQ
    and a Kafka sink at the broker services' ports."""
    doc = compose()
    services = xtcp_services(doc)
    assert services
    _, final = docker_image()
    for svc in services.values():
        container_env({**final.env(), **{k: str(v) for k, v in (svc.get("environment") or {}).items()}})
        cfg = accepted([str(a) for a in svc["command"]])
        by_scheme = {sc.spec.scheme: sc.spec for sc in cfg.sinks}
        assert by_scheme["nsq"].host_ports(4150) == [("nsqd", 4150)]
        assert by_scheme["kafka"].host_ports(9092) == [("kafka", 9092)]
        consumer_url = doc["services"]["consumer"]["entrypoint"][3]
        assert consumer_url == f"kafka://kafka:9092/{by_scheme['kafka'].path}"


def test_compose_ports_and_grace_match_the_listener(container_env: ApplyEnv) -> None:
    """The published port is the metrics port, and compose waits longer than the shutdown grace."""
    _, final = docker_image()
    for svc in xtcp_services(compose()).values():
        container_env(final.env())
        cfg = accepted([str(a) for a in svc["command"]])
        host, port = parse_listen(cfg.settings.metrics_listen)
        assert host == "0.0.0.0"
        assert [p.rsplit(":", 1)[1] for p in svc["ports"]] == [str(port)]
        grace = float(str(svc["stop_grace_period"]).removesuffix("s"))
        assert grace > cfg.settings.shutdown_grace + cfg.poll.poll_timeout_s


# -- k8s/daemonset.yaml ---------------------------------------------------------------------


def daemonset() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((DOCKER / "k8s" / "daemonset.yaml").read_text()) if d]
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    assert isinstance(ds, dict)
    return ds


def k8s_env(container: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            env[item["name"]] = FIELD_REF_VALUES[item["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


def expand(arg: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in args."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), arg)


def test_daemonset_args_are_accepted(container_env: ApplyEnv) -> None:
    """The container's args (after $(VAR) expansion) pass the real parser and config."""
    (container,) = daemonset()["spec"]["template"]["spec"]["containers"]
    env = k8s_env(container)
    _, final = docker_image()
    container_env({**final.env(), **env})
    assert "command" not in container, "the image's ENTRYPOINT (xtcp-async) must run"
    cfg = accepted([expand(a, env) for a in container["args"]])
    assert cfg.settings.hostname == FIELD_REF_VALUES["spec.nodeName"]
    assert parse_listen(cfg.settings.metrics_listen) == (FIELD_REF_VALUES["status.podIP"], 9088)


def test_daemonset_probes_and_port_match_the_listener(container_env: ApplyEnv) -> None:
    """Liveness is /healthz, readiness /readyz, both on the named port the listener binds."""
    spec = daemonset()["spec"]["template"]
    (container,) = spec["spec"]["containers"]
    env = k8s_env(container)
    container_env(env)
    cfg = accepted([expand(a, env) for a in container["args"]])
    _, port = parse_listen(cfg.settings.metrics_listen)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe"):
        assert ports[container[probe]["httpGet"]["port"]] == port
    assert spec["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert spec["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"


def test_daemonset_runs_on_the_host_network_unprivileged_with_limits(container_env: ApplyEnv) -> None:
    """hostNetwork, non-root without capabilities, resource limits, and time to flush on SIGTERM."""
    pod = daemonset()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["securityContext"]["runAsNonRoot"] is True
    _, final = docker_image()
    assert str(pod["securityContext"]["runAsUser"]) == final.all("USER")[0].split(":")[0]
    sc = container["securityContext"]
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert "add" not in sc["capabilities"]
    assert sc["allowPrivilegeEscalation"] is False
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    env = k8s_env(container)
    container_env(env)
    cfg = accepted([expand(a, env) for a in container["args"]])
    assert pod["terminationGracePeriodSeconds"] > cfg.settings.shutdown_grace + cfg.poll.poll_timeout_s
