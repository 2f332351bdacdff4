"""The .proto, the generated code and the field table agree, and stay xtcp2-compatible."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.support.fixtures import require_fixtures
from tests.support.xtcp2_schema import xtcp2_fields
from xtcp_async.encode.gen import xtcp_flat_record_pb2 as pb
from xtcp_async.netlink.fields import CONGESTION_ENUM_NAMES, FIELDS

ROOT = Path(__file__).resolve().parents[3]
_PB_TYPES = {
    pb.XtcpFlatRecord.DESCRIPTOR.fields[0].TYPE_UINT32: "uint32",
    pb.XtcpFlatRecord.DESCRIPTOR.fields[0].TYPE_UINT64: "uint64",
    pb.XtcpFlatRecord.DESCRIPTOR.fields[0].TYPE_INT64: "int64",
    pb.XtcpFlatRecord.DESCRIPTOR.fields[0].TYPE_STRING: "string",
    pb.XtcpFlatRecord.DESCRIPTOR.fields[0].TYPE_BYTES: "bytes",
    pb.XtcpFlatRecord.DESCRIPTOR.fields[0].TYPE_BOOL: "bool",
}


def _proto_fields() -> dict[int, tuple[str, str]]:
    out = {}
    for fd in pb.XtcpFlatRecord.DESCRIPTOR.fields:
        ptype = fd.enum_type.name if fd.enum_type is not None else _PB_TYPES[fd.type]
        out[fd.number] = (fd.name, ptype)
    return out


def test_every_xtcp2_field_keeps_number_name_and_type() -> None:
    """Each field of xtcp2's record exists in ours with the same number, name and type."""
    require_fixtures()
    ours = _proto_fields()
    for number, name, ptype in xtcp2_fields():
        assert ours.get(number) == (name, ptype), number


def test_field_table_matches_proto() -> None:
    """Every row of the field table is a proto field of the same number, name and type."""
    ours = _proto_fields()
    for f in FIELDS:
        assert ours[f.number] == (f.name, f.proto_type), f.name


def test_new_fields_use_ranges_xtcp2_does_not() -> None:
    """Fields xtcp2 lacks are numbered 3000 and up."""
    require_fixtures()
    theirs = {n for n, _, _ in xtcp2_fields()}
    assert all(n >= 3000 for n in _proto_fields() if n not in theirs)


def test_envelope_row_is_field_10_and_enum_matches() -> None:
    """Envelope carries records as repeated field 10; the cc enum has xtcp2's numbers."""
    row = pb.Envelope.DESCRIPTOR.fields_by_name["row"]
    assert row.number == 10 and row.label == row.LABEL_REPEATED
    assert [v.name for v in pb.CongestionAlgorithm.DESCRIPTOR.values] == list(CONGESTION_ENUM_NAMES)


def test_generated_code_is_not_stale(tmp_path: Path) -> None:
    """Regenerating from proto/ gives byte-identical code to what is committed (run `make proto`)."""
    spec = importlib.util.spec_from_file_location("protogen", ROOT / "scripts" / "protogen.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fresh = mod.generate(tmp_path)
    assert fresh
    for path in fresh:
        committed = ROOT / "xtcp_async" / "encode" / "gen" / path.name
        assert committed.read_bytes() == path.read_bytes(), f"{path.name} is stale: run `make proto`"
