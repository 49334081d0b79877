"""Pinning model versions in a Triton config (polling mode writes it; explicit mode sends it)."""
import shutil

from libs.config import REPOSITORY
from libs.triton.repository import model_config, write_pinned_config


def test_a_pinned_config_is_the_same_config_serving_only_the_given_versions(tmp_path):
    shutil.copytree(REPOSITORY / "gnn_ranker" / "configs", tmp_path / "gnn_ranker" / "configs")
    before = model_config(tmp_path, "gnn_ranker", "cpu")
    write_pinned_config(tmp_path, "gnn_ranker", ["3", 2, "3"], "cpu")
    after = model_config(tmp_path, "gnn_ranker", "cpu")
    assert list(after.version_policy.specific.versions) == [2, 3]
    after.ClearField("version_policy")
    assert after == before
    assert [p.name for p in (tmp_path / "gnn_ranker" / "configs").iterdir()] == ["cpu.pbtxt"]  # no temp file left
