"""Pinning model versions in a Triton config (polling mode writes it; explicit mode sends it)."""

from libs.triton.repository import model_config, write_pinned_config

CONFIG = """name: "gnn_ranker"
backend: "python"
max_batch_size: 64
input { name: "cand_ids" data_type: TYPE_INT64 dims: -1 }
output { name: "score" data_type: TYPE_FP32 dims: -1 }
instance_group { count: 1 kind: KIND_CPU }
"""


def test_a_pinned_config_is_the_same_config_serving_only_the_given_versions(tmp_path):
    (tmp_path / "gnn_ranker" / "configs").mkdir(parents=True)
    (tmp_path / "gnn_ranker" / "configs" / "cpu.pbtxt").write_text(CONFIG)
    before = model_config(tmp_path, "gnn_ranker", "cpu")
    write_pinned_config(tmp_path, "gnn_ranker", ["3", 2, "3"], "cpu")
    after = model_config(tmp_path, "gnn_ranker", "cpu")
    assert list(after.version_policy.specific.versions) == [2, 3]
    after.ClearField("version_policy")
    assert after == before
    assert [p.name for p in (tmp_path / "gnn_ranker" / "configs").iterdir()] == ["cpu.pbtxt"]  # no temp file left
