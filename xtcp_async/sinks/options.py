"""Validating a sink's options (URL query or config table) with pydantic, one line per error."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xtcp_async.errors import ConfigError
from xtcp_async.sinks.spec import SinkSpec

M = TypeVar("M", bound=BaseModel)


class SinkOptions(BaseModel):
    """Base of every sink's option model: frozen, unknown options are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Bytes the sink may hold while it cannot deliver (and as much again waiting for room).
    buffer_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)


def parse_options(model: type[M], spec: SinkSpec) -> M:
    """Validate ``spec.options`` into ``model``; a bad option is a ConfigError naming it."""
    try:
        return model.model_validate(spec.options)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"]) or "?"
        allowed = ", ".join(sorted(model.model_fields))
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"sink {spec.scheme}: unknown option {name!r} (allowed: {allowed})") from None
        raise ConfigError(f"sink {spec.scheme}: option {name}: {err['msg']}") from None
