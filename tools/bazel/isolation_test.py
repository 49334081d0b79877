"""Guards the Bazel Python setup: the stubs come from Bazel's outputs and the venv's .pth is not in effect."""

import os
import sys

from shop.common.v1 import common_pb2

if __name__ == "__main__":
    stubs = common_pb2.__file__
    assert ".runfiles/" in stubs and "/libs/gen/" not in stubs, f"stubs imported from {stubs}"

    # shop_repo.pth (written by `make venv`) adds these two; python.sh's -S must keep them off sys.path.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    leaked = {root, os.path.join(root, "libs", "gen")} & {os.path.realpath(p) for p in sys.path}
    assert not leaked, f"source tree on sys.path: {sorted(leaked)}"
    print(f"ok: stubs from {stubs}")
