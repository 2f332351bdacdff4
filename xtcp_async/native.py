"""Which hot path runs: the compiled core (``xtcp_async._fastcore``) or the numpy reference paths.

The core is built by setup.py where a C compiler is found; where it is missing, fails to import,
or is switched off (``XTCP_NATIVE=0``), the numpy decoder and encoder run instead, the service
warns once at start-up and the ``xtcp_async_codec_path`` metric says so.

The layout tables are not kept in C: :func:`configure` passes them from netlink/fields.py when
the core is loaded, so a field added to the table is decoded by the core without a rebuild.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import numpy as np

from xtcp_async.netlink import constants as c
from xtcp_async.netlink.batch import field_dtype
from xtcp_async.netlink.fields import FIELDS, GROUP_BY_ATTR, KNOWN_UNDECODED_ATTRS, Field

#: Set to 0 to run the numpy paths even where the core is built (benchmarks, comparisons).
ENV_SWITCH = "XTCP_NATIVE"
NATIVE = "c"
NUMPY = "numpy"

_CONSTANTS = ("NLMSG_HDRLEN", "INET_DIAG_MSG_LEN", "NLA_HDRLEN", "NLA_TYPE_MASK", "SOCK_DIAG_BY_FAMILY",
              "NLMSG_DONE", "NLMSG_ERROR", "NLMSG_NOOP", "NLM_F_REQUEST", "NLM_F_DUMP_INTR")
#: Attribute groups in the order the core numbers them (its lengths matrix rows).
ATTR_GROUPS = tuple(GROUP_BY_ATTR.values())
_GROUP_INDEX = {g.name: i for i, g in enumerate(ATTR_GROUPS)}


def _spec(f: Field, index: int, wide: bool) -> tuple[int, ...]:
    shift, width = f.bits if f.bits is not None else (0, 0)
    group = -1 if f.group == "inet_diag_msg" else _GROUP_INDEX[f.group]
    return (group, f.offset, f.size, int(f.big_endian), shift, width, int(wide), index)


def _from_kernel(f: Field) -> bool:
    return f.group == "inet_diag_msg" or f.group in _GROUP_INDEX


def layout(fields: tuple[Field, ...] = FIELDS) -> tuple[list[tuple[Field, bool, int]], list[Field]]:
    """Integer fields as (field, wide, row in its matrix), and raw byte fields, from the table."""
    ints: list[tuple[Field, bool, int]] = []
    counts = {False: 0, True: 0}
    for f in fields:
        # Only what the kernel sends: meta, stage and enrichment fields are filled elsewhere.
        if not _from_kernel(f) or f.size <= 0 or f.proto_type == "bytes":
            continue
        wide = field_dtype(f) is np.uint64
        ints.append((f, wide, counts[wide]))
        counts[wide] += 1
    raws = [f for f in fields if _from_kernel(f) and f.proto_type == "bytes" and f.size > 0]
    return ints, raws


INT_LAYOUT, RAW_FIELDS = layout()
N_U32 = sum(1 for _, wide, _ in INT_LAYOUT if not wide)
N_U64 = len(INT_LAYOUT) - N_U32


def configure(core: Any, fields: tuple[Field, ...] = FIELDS) -> None:
    """Hand the core the layout of ``fields`` (the field table) and the netlink constants."""
    ints, raws = layout(fields)
    core.configure(
        {name: int(getattr(c, name)) for name in _CONSTANTS},
        tuple((g.attr, g.size, int(g.name != "congestion")) for g in ATTR_GROUPS),
        tuple(sorted(KNOWN_UNDECODED_ATTRS)),
        tuple(_spec(f, idx, wide) for f, wide, idx in ints),
        tuple(_spec(f, 0, False) for f in raws),
        _GROUP_INDEX.get("congestion", -1),
    )


def _load() -> tuple[ModuleType | None, str]:
    if os.environ.get(ENV_SWITCH, "1").strip() in ("0", "off", "false", "no"):
        return None, f"switched off by {ENV_SWITCH}=0"
    try:
        core = importlib.import_module("xtcp_async._fastcore")
        configure(core)
    except (ImportError, ValueError, TypeError, KeyError) as exc:
        return None, f"compiled core unavailable ({exc})"
    return core, ""


CORE, WHY_NOT = _load()
#: The path in use: "c" or "numpy".
PATH = NATIVE if CORE is not None else NUMPY


__all__ = ["CORE", "NATIVE", "NUMPY", "PATH", "WHY_NOT"]
