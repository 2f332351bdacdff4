"""``--netns all`` against the running kernel: five namespaces of ours (three named, two held only by an
``unshare -n`` process), each with the traffic program's IPv4/IPv6 listeners and connections. One
``--once`` poll must report, per namespace, exactly the sockets ``ss`` lists there, with every value ss
prints equal, and each record must carry that namespace's name (or ``pid:<pid>``) and inode."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .harness import Netns, collector_argv, netns_unavailable_reason, read_jsonl, skip_or_fail, start_traffic
from .netns_scene import HOST_TIMEOUT, UnnamedNetns, inode, named_enter, run_text
from .ss_line import SsLine, parse_text, problems_against_ss, record_key

pytestmark = pytest.mark.root


@dataclass
class Place:
    """One namespace of the scene: how records name it, its inode, and how to run ss in it."""

    label: str
    inode: int
    enter: Any  # argv -> argv run inside
    info: dict[str, Any]


@dataclass
class Scene:
    places: list[Place]
    records: list[dict[str, Any]]
    listed: dict[str, list[SsLine]]
    detailed: dict[str, list[SsLine]]
    stats: dict[str, Any]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """Five namespaces with traffic, one `--netns all --once` poll from the host, then ss in each."""
    reason = netns_unavailable_reason()
    if reason:
        skip_or_fail(reason)
    holders: list[Netns | UnnamedNetns] = []
    traffic = []
    try:
        places = []
        for _ in range(3):
            ns = Netns.create()
            holders.append(ns)
            t = start_traffic(ns)
            traffic.append(t)
            places.append(Place(ns.name, inode(f"/run/netns/{ns.name}"), lambda a, ns=ns: named_enter(ns, a), t.info))
        for _ in range(2):
            un = UnnamedNetns()
            holders.append(un)
            t = start_traffic(un)  # type: ignore[arg-type]  # duck-typed: only popen() is used
            traffic.append(t)
            places.append(Place(f"pid:{un.pid}", inode(un.path), un.enter, t.info))
        out = tmp_path_factory.mktemp("netns") / "out.jsonl"
        stats = out.with_suffix(".stats.json")
        subprocess.run([*collector_argv(), "--netns", "all", "--once", *HOST_TIMEOUT,
                        "--sink", f"file://{out}?format=jsonl",
                        "--metrics-listen", "", "--stats-json", str(stats)], check=True, timeout=120)
        listed = {p.label: parse_text(run_text(p.enter(["ss", "-tanOH"]))) for p in places}
        detailed = {p.label: parse_text(run_text(p.enter(["ss", "-tainOHem"]))) for p in places}
        yield Scene(places, read_jsonl(out), listed, detailed, json.loads(stats.read_text()))
    finally:
        for t in traffic:
            t.stop()
        for h in holders:
            h.delete()


def _ours(scene: Scene, place: Place) -> list[dict[str, Any]]:
    return [r for r in scene.records if r.get("netns_inode") == place.inode]


def test_scene_has_named_and_unnamed_namespaces_with_both_families(scene: Scene) -> None:
    """The scene is what the test claims: five distinct namespaces, each with IPv4 and IPv6 sockets."""
    assert len({p.inode for p in scene.places}) == 5
    assert sum(p.label.startswith("pid:") for p in scene.places) == 2
    for place in scene.places:
        assert {r["inet_diag_msg_family"] for r in _ours(scene, place)} == {2, 10}, place.label


def test_each_namespace_reports_exactly_the_sockets_ss_lists_there(scene: Scene) -> None:
    """Per namespace, the records' (state, addresses, ports) equal ss -tan's in it, bound-only aside."""
    for place in scene.places:
        ours = Counter(record_key(r) for r in _ours(scene, place))
        theirs = Counter(s.key for s in scene.listed[place.label])
        assert ours == theirs, f"{place.label}: missing {theirs - ours}; extra {ours - theirs}"


def test_every_value_ss_prints_is_equal(scene: Scene) -> None:
    """Per namespace, every value of ss -tainOHem equals the record's (ss's rounding allowed, clocks left out)."""
    problems = []
    for place in scene.places:
        recs = {record_key(r): r for r in _ours(scene, place)}
        problems += [f"{place.label} {p}" for p in problems_against_ss(recs, scene.detailed[place.label])]
    assert not problems, "\n".join(problems)


def test_each_record_names_its_namespace(scene: Scene) -> None:
    """Records of a named namespace carry its name, of an unnamed one pid:<holder>, both with the inode."""
    for place in scene.places:
        assert {r["netns"] for r in _ours(scene, place)} == {place.label}
    labels = {r["netns"]: r["netns_inode"] for r in scene.records}
    assert len(set(labels.values())) == len(labels)  # one label per inode, one inode per label


def test_the_poll_counts_namespaces_and_fails_nothing(scene: Scene) -> None:
    """The stats count at least our five namespaces plus the host's, none unenterable, and the poll succeeded."""
    st = scene.stats
    assert st["netns_polled"] >= 6
    assert st["netns_unenterable"] == 0
    assert st["polls_failed"] == 0 and st["polls"] == 1


def test_named_selection_polls_only_those(scene: Scene, tmp_path: Path) -> None:
    """--netns NAME,NAME reports the sockets of exactly those namespaces."""
    named = [p for p in scene.places if not p.label.startswith("pid:")][:2]
    out = tmp_path / "named.jsonl"
    subprocess.run([*collector_argv(), "--netns", ",".join(p.label for p in named), "--once",
                    "--sink", f"file://{out}?format=jsonl", "--metrics-listen", ""], check=True, timeout=120)
    records = read_jsonl(out)
    assert {r["netns"] for r in records} == {p.label for p in named}
    for place in named:
        got = Counter(record_key(r) for r in records if r["netns"] == place.label)
        assert got == Counter(s.key for s in scene.listed[place.label])
