"""The enrichment column stage: batch → batch with the remote ASN and the remote prefix added.

``enrich`` is pure. :class:`Enricher` holds the current ASN table so a SIGHUP can swap in a
fresh one; a reload that fails keeps the table in use and logs why.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from xtcp_async.errors import XtcpError
from xtcp_async.netlink.batch import DEST_PREFIX, DESTINATION, SocketBatch
from xtcp_async.netlink.fields import ENRICH_GROUPS

if TYPE_CHECKING:
    from xtcp_async.enrich.asndb import AsnTable

log = logging.getLogger(__name__)

ASN = "inet_diag_msg_socket_dest_asn"
PREFIX_LENGTH = "inet_diag_msg_socket_dest_prefix_length"
#: --prefix-len when aggregating by prefix without one given: the customary /24 and /48.
DEFAULT_PREFIX_LENS = (24, 48)


def enrich(batch: SocketBatch, table: AsnTable | None, prefix_lens: tuple[int, int] | None) -> SocketBatch:
    """``batch`` plus the ASN column (when a table is given) and the prefix columns (when lengths are)."""
    if table is None and prefix_lens is None:
        return batch
    # Here, not at the top: only --asn-db / --prefix-len get this far, and the column stages are
    # imported at every start (aggregate/columns.py reads the names above; start-up cost, issue 13).
    from xtcp_async.enrich.lookup import lookup_asn, remote_prefix

    columns = dict(batch.columns)
    lengths = dict(batch.lengths)
    fam = batch.columns["inet_diag_msg_family"]
    dst = batch.columns[DESTINATION]
    if table is not None:
        columns[ASN] = lookup_asn(table, fam, dst).astype(np.uint64)
        lengths["asn"] = np.full(batch.n, ENRICH_GROUPS["asn"], dtype=np.int32)
    if prefix_lens is not None:
        prefix, plen = remote_prefix(fam, dst, *prefix_lens)
        columns[DEST_PREFIX] = prefix
        columns[PREFIX_LENGTH] = plen
        lengths["prefix"] = np.full(batch.n, ENRICH_GROUPS["prefix"], dtype=np.int32)
    return replace(batch, columns=columns, lengths=lengths)


@dataclass
class Enricher:
    """The stage as the pipeline holds it: the current table (swapped on reload) and prefix lengths."""

    table: AsnTable | None
    prefix_lens: tuple[int, int] | None
    path: str | None = None
    reloads: int = 0
    reload_failures: int = 0
    _pending: asyncio.Future[bool] | None = None

    @property
    def active(self) -> bool:
        return self.table is not None or self.prefix_lens is not None

    def __call__(self, batch: SocketBatch) -> SocketBatch:
        return enrich(batch, self.table, self.prefix_lens)

    @staticmethod
    def load(path: str | None, prefix_lens: tuple[int, int] | None) -> Enricher:
        """Start-up: a database that cannot be read is a ConfigError (one line, exit 2)."""
        table = _load_asn_db(path) if path else None
        if table is not None:
            log.info("--asn-db: %d prefixes from %s (%d IPv4, %d IPv6 ranges)", table.prefixes, path,
                     len(table.v4), len(table.v6))
        return Enricher(table, prefix_lens, path)

    def start_reload(self) -> asyncio.Future[bool] | None:
        """SIGHUP: read the database again in a worker thread (a full table takes seconds of CPU, which
        must not stall the loop); when done, swap it in, or on failure keep the current one and log why.

        Returns the future (resolving to whether the table was replaced), None without a database or
        while a reload is already running. The future is held here until done, so it has an owner.
        """
        if not self.path or (self._pending is not None and not self._pending.done()):
            return None
        loop = asyncio.get_running_loop()
        raw = loop.run_in_executor(None, _load_asn_db, self.path)
        done: asyncio.Future[bool] = loop.create_future()

        def finished(fut: asyncio.Future[AsnTable]) -> None:
            exc = fut.exception()
            if exc is None:
                table = fut.result()
                self.table = table
                self.reloads += 1
                log.info("--asn-db reloaded: %d prefixes from %s", table.prefixes, self.path)
            else:
                self.reload_failures += 1
                why = str(exc).removeprefix("config: ") if isinstance(exc, XtcpError) else repr(exc)
                log.error("--asn-db reload failed, keeping the previous table (%d prefixes): %s",
                          self.table.prefixes if self.table else 0, why)
            done.set_result(exc is None)

        raw.add_done_callback(finished)
        self._pending = done
        return done


def _load_asn_db(path: str) -> AsnTable:
    # Imported only with --asn-db (gzip, the .mmdb and pfx2as readers): start-up cost, issue 13.
    from xtcp_async.enrich.asndb import load_asn_db

    return load_asn_db(path)
