"""The registry keeps one socket per live namespace and lets go of it when the namespace goes; entering a
namespace that is gone, or whose pid now holds another one, is "vanished", never a crash."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
from pathlib import Path

import pytest

from xtcp_async.netns.enter import NetnsGone, enter_and_open, run_in_fresh_thread
from xtcp_async.netns.registry import NamespaceRegistry
from xtcp_async.netns.select import NetnsSelection
from xtcp_async.stats import Stats

from .harness import netns, netns_unavailable_reason, skip_or_fail
from .netns_scene import UnnamedNetns

pytestmark = pytest.mark.root

#: ioctl(2): an fd of the network namespace a socket belongs to (linux/sockios.h).
SIOCGSKNS = 0x894C


@pytest.fixture(autouse=True)
def _root() -> None:
    reason = netns_unavailable_reason()
    if reason:
        skip_or_fail(reason)


async def test_sockets_follow_namespaces_in_and_out() -> None:
    """A named namespace gets a socket at the rescan after it appears; after `ip netns del`, the next one closes it."""
    stats = Stats()
    with netns() as ns:
        reg = NamespaceRegistry(NetnsSelection("named", (ns.name,), include_self=True), stats)
        try:
            await reg.refresh()
            (entry,) = [e for e in reg.entries.values() if e.origin.netns == ns.name]
            assert entry.origin.netns_inode == os.stat(f"/run/netns/{ns.name}").st_ino
            entry.sock.open()  # the socket the refresh made, handed over
            assert entry.sock._sock is not None
            await asyncio.to_thread(subprocess.run, ["ip", "netns", "del", ns.name], check=True)
            await reg.refresh()
            assert entry.id not in reg.entries and entry.sock._sock is None
            assert len(reg.entries) == 1  # its own namespace stays
        finally:
            reg.close()
    assert stats.netns_rescans == 2 and stats.netns_unenterable == 0


def test_entering_a_vanished_or_reused_namespace_is_gone() -> None:
    """A path that no longer exists, or that now leads to another namespace (pid reuse), raises NetnsGone."""
    holder = UnnamedNetns()
    holder.popen(["sleep", "60"])
    try:
        path = holder.path
        real = os.stat(path)
        with pytest.raises(NetnsGone):
            run_in_fresh_thread(lambda: enter_and_open([path], (real.st_dev, real.st_ino + 1), 1 << 16))
        sock = run_in_fresh_thread(lambda: enter_and_open([path], (real.st_dev, real.st_ino), 1 << 16))
        sock.close()
    finally:
        holder.delete()
    with pytest.raises(NetnsGone):
        run_in_fresh_thread(lambda: enter_and_open([path], (real.st_dev, real.st_ino), 1 << 16))


async def test_a_failed_rediscovery_keeps_polling_what_is_known(tmp_path: Path) -> None:
    """When /proc cannot be read, the rescan is counted as failed and the known namespaces stay."""
    stats = Stats()
    reg = NamespaceRegistry(NetnsSelection("all"), stats)
    try:
        await reg.refresh()
        known = set(reg.entries)
        reg._proc = str(tmp_path / "no-proc")  # what a failing /proc looks like to discovery
        await reg.refresh()
        assert set(reg.entries) == known and stats.netns_rescan_failures == 1
    finally:
        reg.close()


async def test_a_socket_closed_after_an_abandoned_dump_is_reopened_in_its_namespace() -> None:
    """After a dump is abandoned (its socket closed), the next open makes a socket in the same namespace again."""
    with netns() as ns:
        reg = NamespaceRegistry(NetnsSelection("named", (ns.name,)), Stats())
        try:
            await reg.refresh()
            (entry,) = reg.entries.values()
            for _ in range(2):  # the socket the rescan made, then one made by a fresh thread
                entry.sock.open()
                assert entry.sock._sock is not None
                nsfd = fcntl.ioctl(entry.sock._sock.fileno(), SIOCGSKNS)
                try:
                    assert os.fstat(nsfd).st_ino == entry.origin.netns_inode
                finally:
                    os.close(nsfd)
                entry.sock.close()
        finally:
            reg.close()
