"""Find the host's network namespaces: ``/run/netns`` names and every process's ``/proc/PID/ns/net``.

A namespace is identified by the (device, inode) of its nsfs file: ``stat`` on a name under
/run/netns (a bind mount of the nsfs file) and on ``/proc/PID/ns/net`` (a magic link to it) give
the same pair, which is how named namespaces and process namespaces are deduplicated. Blocking
file I/O: the registry runs it off the event loop (a few µs per process).

Reading another user's ``/proc/PID/ns/net`` needs CAP_SYS_PTRACE (ptrace access mode read);
without it those processes are counted as unreadable, not guessed at. Only thread-group leaders
are scanned: a thread that setns()'d on its own is not seen.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from xtcp_async.netns.select import NetnsSelection

NsId = tuple[int, int]
RUN_NETNS = "/run/netns"
PROC = "/proc"


@dataclass
class FoundNs:
    """One distinct namespace and what points at it."""

    id: NsId
    #: ``ip netns`` names bound to it, sorted.
    names: list[str] = field(default_factory=list)
    #: Processes in it (ascending; only collected with --netns all).
    pids: list[int] = field(default_factory=list)
    #: The namespace this collector runs in.
    is_self: bool = False

    @property
    def inode(self) -> int:
        return self.id[1]

    @property
    def label(self) -> str:
        """The record's ``netns`` text: a name, else ``pid:<lowest pid>``, else ``ino:<inode>``."""
        if self.names:
            return self.names[0]
        if self.pids:
            return f"pid:{self.pids[0]}"
        return f"ino:{self.inode}"

    def paths(self, run_netns: str = RUN_NETNS, proc: str = PROC) -> list[str]:
        """Files that open this namespace, the most stable first (a name outlives any process)."""
        return [f"{run_netns}/{n}" for n in self.names] + [f"{proc}/{p}/ns/net" for p in self.pids]


@dataclass
class Discovery:
    """The namespaces a selection covers right now."""

    namespaces: dict[NsId, FoundNs] = field(default_factory=dict)
    #: Processes whose namespace could not be read (EACCES: no CAP_SYS_PTRACE over them).
    unreadable_pids: int = 0
    #: Names asked for (--netns NAME) that are not under /run/netns.
    missing_names: list[str] = field(default_factory=list)


def ns_id(path: str) -> NsId:
    """(st_dev, st_ino) of a namespace file; OSError when it cannot be reached."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _add(found: dict[NsId, FoundNs], nid: NsId) -> FoundNs:
    entry = found.get(nid)
    if entry is None:
        entry = found[nid] = FoundNs(nid)
    return entry


def _named(run_netns: str) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(run_netns) if not e.name.startswith("."))
    except FileNotFoundError:
        return []


def discover(selection: NetnsSelection, *, run_netns: str = RUN_NETNS, proc: str = PROC) -> Discovery:
    """The namespaces of ``selection`` (``self`` yields only the collector's own)."""
    out = Discovery()
    found = out.namespaces
    self_id = ns_id(f"{proc}/self/ns/net")
    include_self = selection.mode in ("self", "all") or selection.include_self
    if include_self:
        _add(found, self_id).is_self = True
    if selection.mode == "self":
        return out
    wanted = set(selection.names) if selection.mode == "named" else None
    present = _named(run_netns)
    for name in present:
        if wanted is not None and name not in wanted:
            continue
        try:
            nid = ns_id(f"{run_netns}/{name}")
        except OSError:
            continue  # deleted between the listing and the stat, or a stale file: not a namespace
        _add(found, nid).names.append(name)
    if wanted is not None:
        out.missing_names = sorted(wanted - set(present))
    if selection.mode == "all":
        out.unreadable_pids = _scan_processes(found, proc)
    for entry in found.values():
        entry.is_self = entry.id == self_id
    return out


def _scan_processes(found: dict[NsId, FoundNs], proc: str) -> int:
    """Add every process's namespace to ``found``; the count of processes that could not be read."""
    unreadable = 0
    with os.scandir(proc) as it:
        pids = sorted(int(e.name) for e in it if e.name.isdigit())
    for pid in pids:
        try:
            nid = ns_id(f"{proc}/{pid}/ns/net")
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited since the listing
        except PermissionError:
            unreadable += 1
            continue
        except OSError:
            continue  # a zombie has no namespace left (ENOENT/EINVAL on some kernels)
        _add(found, nid).pids.append(pid)
    return unreadable
