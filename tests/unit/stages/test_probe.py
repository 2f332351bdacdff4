"""The start-up check: a program the kernel's audit refuses is a config error, not an empty poll."""

from __future__ import annotations

import errno
from dataclasses import replace

import pytest

from xtcp_async.config import load_config
from xtcp_async.errors import ConfigError, NetlinkError
from xtcp_async.netlink.socket import check_program
from xtcp_async.stages.probe import check_kernel_filter

#: S_GE whose `yes` (4) is shorter than the op and its port operand (8): inet_diag_bc_audit says EINVAL.
REFUSED = bytes([2, 4, 12, 0, 0, 0, 80, 0])


def test_the_kernel_refuses_a_malformed_program_with_einval() -> None:
    """check_program raises NetlinkError carrying EINVAL for a program the audit rejects."""
    with pytest.raises(NetlinkError) as exc:
        check_program(REFUSED)
    assert exc.value.errno == errno.EINVAL


def test_a_refused_program_is_a_one_line_filter_config_error() -> None:
    """check_kernel_filter turns the kernel's EINVAL into a ConfigError naming --filter."""
    cfg = load_config({"filter": "sport = :22"})
    check_kernel_filter(cfg)  # our own program passes the audit
    bad = replace(cfg, poll=replace(cfg.poll, bytecode=REFUSED))
    with pytest.raises(ConfigError) as exc:
        check_kernel_filter(bad)
    assert "--filter" in str(exc.value) and "EINVAL" in str(exc.value) and "\n" not in str(exc.value)
