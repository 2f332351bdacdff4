"""Synthetic SocketBatches for the stage tests: decoder output of made-up sockets."""

from __future__ import annotations

from collections.abc import Sequence

from tests.unit.netlink.synth import diag_msg, nla, tcp_info
from xtcp_async.netlink import constants as c
from xtcp_async.netlink.batch import SocketBatch
from xtcp_async.netlink.decode import decode_messages


def synthetic_batch(n: int, *, dports: Sequence[int] = (443,), first_cookie: int = 1) -> SocketBatch:
    """``n`` established IPv4 sockets with 280-byte tcp_info, cookies first_cookie.., dports cycled."""
    info = nla(c.INET_DIAG_INFO, tcp_info(280))
    msgs = b"".join(diag_msg(cookie=first_cookie + i, sport=10_000 + i % 50_000, dport=dports[i % len(dports)],
                             attrs=info) for i in range(n))
    batch = decode_messages([msgs]).batch
    # Decoded columns may be views of one buffer: the tests change values, so own them.
    batch.columns = {k: v.copy() for k, v in batch.columns.items()}
    return batch
