from pathlib import Path

from google.api import field_behavior_pb2

ROOT = Path(__file__).absolute().parents[3]  # not resolve(): under Bazel, the runfiles tree


def test_vendored_field_behavior_is_the_one_the_runtime_ships():
    # protoc and buf compile against protos/google/api/; the generated stubs import the Python module of
    # googleapis-common-protos. The two must be the same file, or the annotations could mean different things.
    runtime = Path(field_behavior_pb2.__file__).with_name("field_behavior.proto")
    assert (ROOT / "protos/google/api/field_behavior.proto").read_text() == runtime.read_text()


def test_vendored_money_is_the_one_the_runtime_ships():
    from google.type import money_pb2

    runtime = Path(money_pb2.__file__).with_name("money.proto")
    assert (ROOT / "protos/google/type/money.proto").read_text() == runtime.read_text()
