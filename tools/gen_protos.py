"""Generate Python gRPC stubs from protos/ into libs/gen/ (never edited by hand)."""

from __future__ import annotations

import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
OUT_DIR = ROOT / "libs" / "gen"


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    # protos/google/ is vendored only so that protoc (and buf) can resolve imports; its Python modules come
    # from googleapis-common-protos, and stubs of our own would shadow the `google` package.
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / "shop").rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"-I{well_known}",
            f"--python_out={OUT_DIR}",
            f"--pyi_out={OUT_DIR}",
            f"--grpc_python_out={OUT_DIR}",
            *protos,
        ]
    )
    if rc != 0:
        return rc
    # Namespace packages would work, but explicit __init__ files keep tools (pytest, bazel) happy.
    for d in [OUT_DIR, *(p for p in OUT_DIR.rglob("*") if p.is_dir())]:
        (d / "__init__.py").touch()
    print(f"generated stubs for {len(protos)} protos into {OUT_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
