"""Generate xtcp_async/encode/gen/*_pb2.py from proto/ with the pinned grpcio-tools protoc.

`make proto` runs this; tests/unit/encode/test_schema.py runs it into a temporary folder and
fails when the committed generated code differs (stale).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = ROOT / "proto"
GEN_DIR = ROOT / "xtcp_async" / "encode" / "gen"


def generate(out_dir: Path) -> list[Path]:
    """Run protoc on every .proto in proto/; return the generated files."""
    from grpc_tools import protoc  # dev dependency, only needed here

    out_dir.mkdir(parents=True, exist_ok=True)
    protos = sorted(PROTO_DIR.glob("*.proto"))
    args = ["protoc", f"-I{PROTO_DIR}", f"--python_out={out_dir}", f"--pyi_out={out_dir}"]
    rc = protoc.main([*args, *(str(p) for p in protos)])
    if rc != 0:
        raise SystemExit(f"protoc failed with exit code {rc}")
    return sorted(p for p in out_dir.iterdir() if p.name.endswith(("_pb2.py", "_pb2.pyi")))


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else GEN_DIR):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
