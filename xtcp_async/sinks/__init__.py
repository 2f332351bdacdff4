"""Sinks, chosen by URL scheme through one registry and imported lazily.

Lazy imports keep ``import xtcp_async`` working without aiokafka or pynsq installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from xtcp_async.errors import ConfigError
from xtcp_async.sinks.base import BaseSink, Sink, SinkStats
from xtcp_async.sinks.spec import SinkSpec, parse_sink_url

#: scheme -> "module:factory"; the factory takes a SinkSpec and returns a Sink.
REGISTRY: dict[str, str] = {
    "stdout": "xtcp_async.sinks.file:StdoutSink.from_spec",
    "file": "xtcp_async.sinks.file:FileSink.from_spec",
    "null": "xtcp_async.sinks.memory:NullSink.from_spec",
    "memory": "xtcp_async.sinks.memory:MemorySink.from_spec",
    "udp": "xtcp_async.sinks.udp:UdpSink.from_spec",
    "kafka": "xtcp_async.sinks.kafka:KafkaSink.from_spec",
    "nsq": "xtcp_async.sinks.nsq:NsqSink.from_spec",
}


def _factory(scheme: str) -> Callable[[SinkSpec], Sink]:
    target = REGISTRY.get(scheme)
    if target is None:
        raise ConfigError(f"sink: unknown scheme {scheme!r} (allowed: {', '.join(sorted(REGISTRY))})")
    module_name, _, attr_path = target.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as exc:
        extra = {"kafka": "kafka", "nsq": "nsq"}.get(scheme)
        hint = f" (install the extra: pip install 'xtcp-async[{extra}]')" if extra else ""
        raise ConfigError(f"sink: {scheme}:// needs a missing module: {exc.name}{hint}") from exc
    for name in attr_path.split("."):
        obj = getattr(obj, name)
    return cast("Callable[[SinkSpec], Sink]", obj)


def create_sink(spec: SinkSpec) -> Sink:
    """Build the sink for ``spec``; errors in its options are :class:`ConfigError`."""
    return _factory(spec.scheme)(spec)


__all__ = ["REGISTRY", "BaseSink", "Sink", "SinkSpec", "SinkStats", "create_sink", "parse_sink_url"]
