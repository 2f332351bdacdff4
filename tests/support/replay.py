"""The recorded 6.18 dump (tests/data/kernel_6_18_dump.bin) as a dump source for service tests.

Service specs run on these known sockets instead of whatever the host has, so their counts are
exact and they need no root.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from xtcp_async.netlink.source import ReplaySource, split_by_family

DATA = Path(__file__).resolve().parents[1] / "data"
DUMP = DATA / "kernel_6_18_dump.bin"


def recorded_chunks() -> list[bytes]:
    """Every chunk of the recorded dump, in order (the AF_INET dump's, then AF_INET6's)."""
    spec = importlib.util.spec_from_file_location("record_capture", DATA / "record_capture.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    chunks: list[bytes] = mod.read_chunks(DUMP)
    return chunks


def recorded_source(**kwargs: object) -> ReplaySource:
    """A ReplaySource that replays the recorded dump on every poll (kwargs: delay_s, hang)."""
    return ReplaySource(split_by_family(recorded_chunks()), **kwargs)  # type: ignore[arg-type]
