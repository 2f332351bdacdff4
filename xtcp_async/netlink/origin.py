"""Where a socket row came from: its network namespace and, when known, container and pod.

Values are per namespace, so a SocketBatch holds a small table of these and one code per row
(see ``SocketBatch.origin_codes``): stamping costs one ``np.repeat``-like index per chunk, never
a Python step per socket.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The record fields an origin fills, in field-number order (30, 31, 40, 41, 3301-3303).
ORIGIN_FIELDS = ("netns", "netns_inode", "container_id", "container_runtime", "pod_uid", "pod_name",
                 "pod_namespace")


@dataclass(frozen=True)
class NetnsOrigin:
    """One namespace's identity as stamped on its records ('' / 0: not known, left out)."""

    #: The ``ip netns`` name, else ``pid:<pid>`` of a process in it, else ``ino:<inode>``.
    netns: str = ""
    netns_inode: int = 0
    #: Full container id (64 hex digits for docker, containerd and CRI-O) and its runtime.
    container_id: str = ""
    container_runtime: str = ""
    pod_uid: str = ""
    pod_name: str = ""
    pod_namespace: str = ""

    def values(self) -> dict[str, str | int]:
        """The known fields, by record field name, in field-number order."""
        out: dict[str, str | int] = {}
        for name in ORIGIN_FIELDS:
            v = getattr(self, name)
            if v:
                out[name] = v
        return out


#: Rows of a namespace we know nothing about (``--netns self``): every origin field left out.
NO_ORIGIN = NetnsOrigin()
