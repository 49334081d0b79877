"""pytest_per_dir: one py_test per directory of test files, each running pytest on that directory's files."""

def pytest_per_dir(srcs, deps = [], data = [], **kwargs):
    """Groups srcs (test_*.py paths relative to this package) by directory; one py_test per directory.

    The test for `unit/services/gateway/test_*.py` is named `unit_services_gateway`. Every test gets the
    same `deps` (code under test, conftest.py and helper modules) and `data` (pytest.ini, fixture files).
    pytest runs in the runfiles tree, so it finds pytest.ini there and reads no file of the source tree.
    """
    by_dir = {}
    for src in srcs:
        d = src.rpartition("/")[0]
        by_dir.setdefault(d, []).append(src)
    pkg = native.package_name()
    for d, files in sorted(by_dir.items()):
        native.py_test(
            name = d.replace("/", "_") or "tests",
            srcs = ["//tools/bazel:pytest_main.py"] + files,
            main = "//tools/bazel:pytest_main.py",
            # pytest runs from the runfiles root of the main repository: workspace-relative paths.
            args = [(pkg + "/" + f) if pkg else f for f in files],
            deps = deps,
            data = data,
            **kwargs
        )
