"""Start-up check of the compiled filter: the kernel's own audit, before the first poll.

A program the kernel refuses would otherwise fail every dump (or, worse, be read as "no
sockets"), so it is a configuration error (exit 2) instead.
"""

from __future__ import annotations

import errno

from xtcp_async.config import Config
from xtcp_async.errors import ConfigError, NetlinkError
from xtcp_async.netlink.socket import check_program


def check_kernel_filter(cfg: Config) -> None:
    """Raise ConfigError when the kernel refuses the --filter/--exclude-port program."""
    prog = cfg.poll.bytecode
    if not prog:
        return
    for family in cfg.poll.families:
        try:
            check_program(prog, family)
        except NetlinkError as exc:
            why = {errno.EINVAL: "the kernel refused the compiled program (inet_diag_bc_audit: EINVAL)",
                   errno.EPERM: "the kernel needs CAP_NET_ADMIN for fwmark conditions (EPERM)"}
            reason = why.get(exc.errno, str(exc))
            raise ConfigError(f"config: --filter: {reason}") from None
