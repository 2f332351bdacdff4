"""Every raw attribute blob from the xtcp2 fixtures decodes cleanly inside a reply message."""

from __future__ import annotations

import pytest

from tests.support.fixtures import attribute_blobs, require_fixtures
from tests.unit.netlink.synth import diag_msg
from xtcp_async.netlink.decode import decode_messages
from xtcp_async.netlink.fields import GROUP_BY_ATTR

#: Values read off the blobs' bytes by hand (file → field → value).
EXPECTED = {
    "6_10_3/attribute_cgroup_21": {"c_group": 0xF69},
    "6_10_3/attribute_meminfo_1506": {"mem_info_rmem": 1506, "mem_info_fmem": 0xA1E, "mem_info_tmem": 2},
    "6_10_3/attribute_cong_cubic": {"congestion_algorithm_string": "cubic", "congestion_algorithm_enum": "CUBIC"},
    "6_6_44/attribute_tcclass": {"traffic_class": 2},
    "6_6_44/attribute_shutdown": {"shutdown_state": 0},
    "6_10_3/attribute_sockopt_5200": {"sock_opt": 0x52},
    "4_19_319/attribute_meminfo_f4096": {"mem_info_fmem": 4096},
    "6_10_3/attribute_bbrinfo": {"bbr_info_bw_lo": 0x3AFF, "bbr_info_bw_hi": 0, "bbr_info_min_rtt": 30,
                                 "bbr_info_pacing_gain": 320, "bbr_info_cwnd_gain": 512},
}


def _blobs() -> list[object]:
    return list(attribute_blobs(require_fixtures()))


def test_every_blob_decodes_without_problems() -> None:
    """Each blob wrapped in a message decodes with no problem counted and its group present."""
    blobs = attribute_blobs(require_fixtures())
    assert len(blobs) >= 35
    for blob in blobs:
        raw = blob.path.read_bytes()[: blob.nla_len]
        res = decode_messages([diag_msg(attrs=raw + b"\0" * ((-len(raw)) & 3))])
        assert not res.problems, blob.path
        group = GROUP_BY_ATTR[blob.nla_type]
        assert res.batch.lengths[group.name][0] == blob.nla_len - 4, blob.path


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_blob_values(name: str) -> None:
    """Named blobs decode to the values their bytes hold."""
    root = require_fixtures()
    raw = (root / "xtcp2" / name).read_bytes()
    rec = decode_messages([diag_msg(attrs=raw + b"\0" * ((-len(raw)) & 3))]).batch.to_records()[0]
    assert {k: rec.get(k) for k in EXPECTED[name]} == EXPECTED[name]
