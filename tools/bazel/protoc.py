"""grpc_tools.protoc as a Bazel tool (genrules cannot reach the Python toolchain directly in Bazel 4.2)."""

import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

if __name__ == "__main__":
    # Like `python -m grpc_tools.protoc`: make google/protobuf/*.proto (well-known types) importable.
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    sys.exit(protoc.main(sys.argv + [f"-I{well_known}"]))
