"""``--netns self|all|NAME[,NAME...]``: parsed once, at the config edge (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

#: The longest name ``ip netns add`` accepts is a file name under /run/netns.
_MAX_NAME = 255


@dataclass(frozen=True)
class NetnsSelection:
    """Which network namespaces a poll covers.

    ``self``: only the one the collector runs in (the default, no attribution stamped).
    ``all``: every distinct namespace on the host. ``named``: the listed ``ip netns`` names,
    plus the collector's own when ``include_self``.
    """

    mode: Literal["self", "all", "named"]
    names: tuple[str, ...] = ()
    include_self: bool = False

    @property
    def only_self(self) -> bool:
        return self.mode == "self"


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"{name!r} is not a namespace name (a file name under /run/netns)")
    if len(name) > _MAX_NAME:
        raise ValueError(f"namespace name longer than {_MAX_NAME} characters")


def parse_netns_selection(values: Sequence[str]) -> NetnsSelection:
    """``["self"]`` / ``["all"]`` / names (``self`` may be listed with names); ValueError otherwise."""
    items = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    if not items:
        raise ValueError("expected self, all, or namespace names")
    if "all" in items:
        if len(items) > 1:
            raise ValueError("'all' cannot be combined with other values")
        return NetnsSelection("all")
    if items == ["self"]:
        return NetnsSelection("self")
    names = [n for n in items if n != "self"]
    for name in names:
        _check_name(name)
    return NetnsSelection("named", tuple(names), include_self="self" in items)
