"""One sock_diag socket per live network namespace, kept between polls, closed when it goes.

``refresh()`` rediscovers the namespaces (xtcp_async.netns.discover), reads the attribution of
the new ones and opens their sockets, all in one short-lived thread (enter.py says why a fresh
thread), then on the event loop closes the sockets of namespaces that are gone: an open netlink
socket keeps its namespace alive in the kernel, so holding one for a deleted namespace would be
a leak. A namespace's attribution is read once, when it is first seen: the pod sandbox that
owns a network namespace does not change during its life.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path

from xtcp_async.errors import NetlinkError
from xtcp_async.netlink.origin import NetnsOrigin
from xtcp_async.netlink.socket import DiagSocket
from xtcp_async.netns.attribution import (
    NOTHING,
    Attribution,
    label_files,
    labels_in_file,
    parse_proc_cgroup,
    with_labels,
)
from xtcp_async.netns.discover import PROC, RUN_NETNS, Discovery, FoundNs, NsId, discover, ns_id
from xtcp_async.netns.enter import NetnsDenied, NetnsGone, enter_and_open, in_fresh_thread, run_in_fresh_thread
from xtcp_async.netns.select import NetnsSelection
from xtcp_async.ops.ratelimit import rate_limited
from xtcp_async.stats import Stats

log = logging.getLogger(__name__)

#: Replies read in the request's thread for another namespace's dump (see DiagSocket): ~500
#: sockets, so a pod's whole dump stays off the event loop while a huge one still streams.
PREFETCH_BYTES = 256 * 1024
#: A runtime's label file is a few KiB; anything much bigger is not one.
_LABEL_FILE_MAX = 1 << 20


def read_attribution(pid: int, proc: str = PROC) -> Attribution:
    """Container and pod of process ``pid`` (NOTHING when it exited or its files are unreadable)."""
    try:
        found = parse_proc_cgroup(Path(f"{proc}/{pid}/cgroup").read_text())
    except OSError:
        return NOTHING
    for path in label_files(found):
        try:
            with open(path, "rb") as fh:
                text = fh.read(_LABEL_FILE_MAX).decode("utf-8", "replace")
        except OSError:
            continue
        return with_labels(found, labels_in_file(text))
    return found


@dataclass
class NsEntry:
    """A namespace being polled: its socket and what its records carry."""

    id: NsId
    sock: DiagSocket
    origin: NetnsOrigin
    paths: list[str]
    opener: _Opener | None = None

    def close(self) -> None:
        """Close its socket, also the one made for it but not taken by a dump yet (idempotent)."""
        self.sock.close()
        if self.opener is not None:
            self.opener.close()

    def gone(self) -> bool:
        """Whether none of the files that led to the namespace still does."""
        for path in self.paths:
            with contextlib.suppress(OSError):
                if ns_id(path) == self.id:
                    return False
        return True


@dataclass
class _Scan:
    """What the refresh thread found and opened (handed to the event loop)."""

    discovery: Discovery
    opened: dict[NsId, socket.socket] = field(default_factory=dict)
    denied: dict[NsId, str] = field(default_factory=dict)
    vanished: int = 0
    attributions: dict[NsId, Attribution] = field(default_factory=dict)

    def close_opened(self) -> None:
        for sock in self.opened.values():
            sock.close()


class _Opener:
    """A DiagSocket's opener for a foreign namespace: the socket the refresh made, then (after an
    abandoned dump closed it) a new one made in a fresh thread."""

    def __init__(self, first: socket.socket, paths: list[str], nid: NsId) -> None:
        self._first: socket.socket | None = first
        #: Kept current by each rescan: a reopen goes through what leads to the namespace now.
        self.paths = paths
        self._id = nid

    def __call__(self, rcvbuf_bytes: int) -> socket.socket:
        first, self._first = self._first, None
        if first is not None:
            return first
        return run_in_fresh_thread(lambda: enter_and_open(self.paths, self._id, rcvbuf_bytes))

    def close(self) -> None:
        if self._first is not None:
            self._first.close()
            self._first = None


class NamespaceRegistry:
    """The namespaces of a ``--netns`` selection and their open sockets."""

    def __init__(self, selection: NetnsSelection, stats: Stats, *, rcvbuf_bytes: int = 1 << 20,
                 run_netns: str = RUN_NETNS, proc: str = PROC) -> None:
        self.selection = selection
        self.stats = stats
        self.entries: dict[NsId, NsEntry] = {}
        self._attributions: dict[NsId, Attribution] = {}
        self._rcvbuf = rcvbuf_bytes
        self._run_netns = run_netns
        self._proc = proc
        self._warned: set[str] = set()

    async def refresh(self) -> None:
        """Rediscover: open sockets in new namespaces, close those of vanished ones."""
        known = frozenset(self.entries)
        try:
            scan = await in_fresh_thread(lambda: self._scan(known), _Scan.close_opened)
        except OSError as exc:
            # /proc or /run/netns unreadable for a moment: poll what is known, try again next time.
            self.stats.netns_rescan_failures += 1
            log.warning("netns: rediscovery failed, polling the %d namespace(s) already known: %s",
                        len(self.entries), exc, extra=rate_limited("netns:rescan", every_s=60.0))
            return
        self._apply(scan)

    def _scan(self, known: frozenset[NsId]) -> _Scan:
        """In the refresh thread: discovery, then attribution and a socket for each new namespace."""
        scan = _Scan(discover(self.selection, run_netns=self._run_netns, proc=self._proc))
        for nid, found in scan.discovery.namespaces.items():
            if nid in known:
                continue
            if found.is_self:
                if found.pids:
                    scan.attributions[nid] = read_attribution(found.pids[0], self._proc)
                continue  # opened on the loop, no setns needed
            try:
                scan.opened[nid] = enter_and_open(found.paths(self._run_netns, self._proc), nid, self._rcvbuf)
            except NetnsGone:
                scan.vanished += 1
                continue
            except (NetnsDenied, NetlinkError, OSError) as exc:  # counted and logged once, never fatal
                scan.denied[nid] = str(exc)
                continue
            if found.pids:
                scan.attributions[nid] = read_attribution(found.pids[0], self._proc)
        return scan

    def _apply(self, scan: _Scan) -> None:
        found = scan.discovery.namespaces
        for nid in [n for n in self.entries if n not in found]:
            # Gone from the host: close now, our socket is all that could still pin it.
            self.entries.pop(nid).close()
            self._attributions.pop(nid, None)
        self._attributions.update(scan.attributions)
        for nid, f in found.items():
            entry = self.entries.get(nid)
            origin = self._origin(f)
            paths = f.paths(self._run_netns, self._proc)
            if entry is not None:
                entry.origin, entry.paths = origin, paths
                if entry.opener is not None:
                    entry.opener.paths = paths
            elif f.is_self:
                self.entries[nid] = NsEntry(nid, DiagSocket(), origin, paths)
            elif nid in scan.opened:
                opener = _Opener(scan.opened[nid], paths, nid)
                sock = DiagSocket(opener=opener, prefetch_bytes=PREFETCH_BYTES)
                self.entries[nid] = NsEntry(nid, sock, origin, paths, opener)
        st = self.stats
        st.netns_rescans += 1
        st.netns_vanished += scan.vanished
        st.netns_unenterable = len(scan.denied)
        st.netns_enter_failures += len(scan.denied)
        st.netns_unreadable_processes = scan.discovery.unreadable_pids
        self._warn_once(scan)

    def _origin(self, f: FoundNs) -> NetnsOrigin:
        a = self._attributions.get(f.id, NOTHING)
        return NetnsOrigin(netns=f.label, netns_inode=f.inode, container_id=a.container_id,
                           container_runtime=a.container_runtime, pod_uid=a.pod_uid, pod_name=a.pod_name,
                           pod_namespace=a.pod_namespace)

    def _warn_once(self, scan: _Scan) -> None:
        """What cannot be polled is logged once per kind for the process's life, then only counted."""
        if scan.denied and "denied" not in self._warned:
            self._warned.add("denied")
            first = next(iter(scan.denied.values()))
            log.warning("netns: cannot enter %d network namespace(s) (needs CAP_SYS_ADMIN; e.g. %s); polling "
                        "the %d it can. Logged once; counted in xtcp_netns_enter_failures_total",
                        len(scan.denied), first, len(self.entries))
        if scan.discovery.unreadable_pids and "unreadable" not in self._warned:
            self._warned.add("unreadable")
            log.warning("netns: cannot read the network namespace of %d process(es) (needs CAP_SYS_PTRACE); "
                        "their namespaces are not polled. Logged once; gauge xtcp_netns_unreadable_processes",
                        scan.discovery.unreadable_pids)
        for name in scan.discovery.missing_names:
            if f"missing:{name}" not in self._warned:
                self._warned.add(f"missing:{name}")
                log.warning("netns: no network namespace named %r under %s (yet); it is polled once it "
                            "exists", name, self._run_netns)

    def close(self) -> None:
        """Close every socket (idempotent)."""
        for entry in self.entries.values():
            entry.close()
        self.entries.clear()


__all__ = ["NamespaceRegistry", "NsEntry", "read_attribution"]
