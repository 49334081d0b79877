"""Entry point of every py_test made by pytest.bzl: runs pytest on the files given as arguments."""

import os
import sys

if __name__ == "__main__":
    # sys.path[0] is this file's directory in the source tree (Python resolves the runfiles symlink):
    # drop it, so that everything is imported from the runfiles tree.
    del sys.path[0]

    import pytest

    args = [
        "-p",
        "no:cacheprovider",  # the runfiles tree is not a place to write .pytest_cache
        *sys.argv[1:],
    ]
    if os.environ.get("XML_OUTPUT_FILE"):  # set by `bazel test`: per-test-case results in test.xml
        args.append(f"--junitxml={os.environ['XML_OUTPUT_FILE']}")
    sys.exit(pytest.main(args))
