"""A protobuf schema built at run time from xtcp2's field list (../shared/reference).

Parsing our payloads with it proves an xtcp2 consumer that knows only its own .proto reads our
bytes to the same values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from tests.support.fixtures import fixtures_dir

_SCALARS = {
    "uint32": descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    "uint64": descriptor_pb2.FieldDescriptorProto.TYPE_UINT64,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "bytes": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
}


def reference_tsv() -> Path:
    return fixtures_dir().parent / "reference" / "xtcp2_flat_record_v1_fields.tsv"


def xtcp2_fields() -> list[tuple[int, str, str]]:
    """(number, name, type) of every xtcp2 record field."""
    out = []
    for line in reference_tsv().read_text().splitlines():
        if not line or line.startswith("#") or line.startswith("number"):
            continue
        number, name, ptype = line.split("\t")
        out.append((int(number), name, ptype))
    return out


def xtcp2_classes() -> tuple[Any, Any]:
    """(XtcpFlatRecord, Envelope) message classes built from the field list alone."""
    f = descriptor_pb2.FileDescriptorProto(name="xtcp2_from_tsv.proto", package="xtcp2_tsv", syntax="proto3")
    enum = f.enum_type.add(name="CongestionAlgorithm")
    for i, n in enumerate(["UNSPECIFIED", "CUBIC", "DCTCP", "VEGAS", "PRAGUE", "BBR1", "BBR2", "BBR3"]):
        enum.value.add(name=n, number=i)
    rec = f.message_type.add(name="XtcpFlatRecord")
    for number, name, ptype in xtcp2_fields():
        fd = rec.field.add(name=name, number=number, label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
        if ptype == "CongestionAlgorithm":
            fd.type = descriptor_pb2.FieldDescriptorProto.TYPE_ENUM
            fd.type_name = ".xtcp2_tsv.CongestionAlgorithm"
        else:
            fd.type = _SCALARS[ptype]
    env = f.message_type.add(name="Envelope")
    env.field.add(name="row", number=10, label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
                  type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE, type_name=".xtcp2_tsv.XtcpFlatRecord")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return (message_factory.GetMessageClass(pool.FindMessageTypeByName("xtcp2_tsv.XtcpFlatRecord")),
            message_factory.GetMessageClass(pool.FindMessageTypeByName("xtcp2_tsv.Envelope")))
