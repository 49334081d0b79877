import numpy as np
import onnx
import pytest
import torch

from libs.explain import Mask, masked_scenarios
from libs.features import stack
from libs.model_io import MAX_CANDIDATES
from libs.rankers import get as ranker
from libs.rankers import specs
from libs.rankers.transformer_ranker import SPEC as TRANSFORMER_RANKER_SPEC
from tests.unit.features import synthetic
from training.export.onnx_export import MODEL_PY, ParityError, dynamic_axes, export_model
from training.export.tensorrt import (
    FORBIDDEN_OPS,
    OPS_FILE,
    TensorRTUnavailable,
    build_engine,
    check_dynamic_axes,
    check_ops,
    load_supported_ops,
    offline_report,
    optimisation_profile,
    tensorrt_status,
    uncovered,
)
from training.models.rankers import GnnRanker, TransformerRanker, serving_form, wire_form


@pytest.fixture(scope="module")
def store():
    return synthetic.store()


def _batches(name, store):
    build = ranker(name).inputs
    ctxs = [store.user_context(u) for u in ("42", "1000", "1001")]
    one = build(store, ctxs[0], np.arange(7))
    many = stack([build(store, c, np.arange(12)) for c in ctxs])
    explain = masked_scenarios(
        build(store, ctxs[0], np.array([3, 4])),
        [Mask("history_item", 3), Mask("repeat"), Mask("popularity")],
        ranker(name).history_slots,
    )
    new_product = build(
        store, ctxs[1], np.array([-1, 3, 5]), None, np.random.default_rng(1).normal(size=(3, 384)).astype(np.float32)
    )
    return [one, many, explain, new_product]


def _wire(name, batches):
    return [ranker(name).to_wire(b) for b in batches]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, store):
    torch.manual_seed(0)
    repo = tmp_path_factory.mktemp("repo")
    models = {
        "transformer_ranker": TransformerRanker(synthetic.N_ITEMS, dim=16),
        "gnn_ranker": GnnRanker(synthetic.N_ITEMS, torch.from_numpy(synthetic.item_embeddings()), dim=16),
    }
    # As export_all does: the wire form (ids in, title table held) checked against the trained module.
    reports = {
        n: export_model(
            wire_form(serving_form(m), n, store.item_emb),
            ranker(n).spec,
            _batches(n, store),
            repo,
            tolerance=1e-4,
            reference=m.eval(),
            served=ranker(n).served_spec,
            to_wire=ranker(n).to_wire,
        )
        for n, m in models.items()
    }
    return repo, models, reports


@pytest.mark.parametrize("name", ["transformer_ranker", "gnn_ranker"])
def test_export_writes_version_after_parity(exported, name):
    repo, _, reports = exported
    report = reports[name]
    assert report.ok and report.batches == 4  # incl. a new product, whose embedding travels
    assert max(report.max_abs_diff.values()) < 1e-4
    assert (repo / name / "1" / "model.onnx").is_file()
    assert (repo / name / "1" / "model.py").read_text() == MODEL_PY


@pytest.mark.parametrize("name", ["transformer_ranker", "gnn_ranker"])
def test_exported_graph_passes_tensorrt_offline_checks(exported, store, name):
    repo, _, _ = exported
    spec = specs()[name]
    model = onnx.load(str(repo / name / "1" / "model.onnx"))
    assert check_ops(model) == []
    assert check_dynamic_axes(model, spec) == []
    report = offline_report(repo / name / "1" / "model.onnx", spec, _wire(name, _batches(name, store)))
    assert report["ok"], report
    assert not FORBIDDEN_OPS & set(report["ops"])


def test_only_declared_axes_are_dynamic():
    axes = dynamic_axes(TRANSFORMER_RANKER_SPEC)
    assert axes["hist_emb"] == {0: "batch"}  # history length and width are static
    assert axes["cand_emb"] == {0: "batch", 1: "candidates"}
    assert axes["hist_attention"] == {0: "batch", 1: "candidates"}
    assert dynamic_axes(specs()["text_encoder"])["input_ids"] == {0: "batch", 1: "tokens"}


def test_dynamic_axis_check_catches_extra_dynamic_dim(exported):
    repo, _, _ = exported
    model = onnx.load(str(repo / "gnn_ranker" / "1" / "model.onnx"))
    model.graph.input[1].type.tensor_type.shape.dim[1].dim_param = "oops"
    assert any("user_nbr_feats" in p for p in check_dynamic_axes(model, specs()["gnn_ranker"]))


def test_op_check_flags_unsupported_and_scatter():
    node = onnx.helper.make_node("ScatterND", ["x", "i", "u"], ["y"])
    odd = onnx.helper.make_node("Unique", ["y"], ["z"])
    graph = onnx.helper.make_graph([node, odd], "g", [], [])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    problems = check_ops(model)
    assert any("ScatterND" in p and "forbidden" in p for p in problems)
    assert any("Unique" in p for p in problems)


def test_supported_ops_file_has_source_and_version():
    table = load_supported_ops()
    assert OPS_FILE.is_file()
    assert table["source"].startswith("https://github.com/onnx/onnx-tensorrt")
    assert table["tensorrt_version"] and {"MatMul", "Softmax", "Gather", "LayerNormalization"} <= set(
        table["supported"]
    )


def test_profiles_cover_serving_shapes(store):
    for name in ("transformer_ranker", "gnn_ranker"):
        spec = specs()[name]
        assert uncovered(spec, _wire(name, _batches(name, store))) == []
        big = {
            n: np.zeros((spec.max_batch_size, *[MAX_CANDIDATES if d == -1 else d for d in t.shape]), t.np_dtype)
            for n, t in zip(spec.input_names, spec.inputs)
        }
        assert uncovered(spec, [big]) == []
        too_many = {k: np.concatenate([v, v[:1]]) for k, v in big.items()}
        assert uncovered(spec, [too_many])
    profile = optimisation_profile(specs()["text_encoder"])
    assert profile.shapes["input_ids"][2] == (64, 32)


def test_parity_failure_writes_nothing(tmp_path, store):
    model = TransformerRanker(synthetic.N_ITEMS, dim=16).eval()
    with pytest.raises(ParityError):
        export_model(model, TRANSFORMER_RANKER_SPEC, _batches("transformer_ranker", store), tmp_path, tolerance=-1.0)
    assert not (tmp_path / "transformer_ranker" / "1" / "model.onnx").exists()


def test_tensorrt_engine_build_or_skip(exported, tmp_path):
    available, reason = tensorrt_status()
    repo, _, _ = exported
    onnx_path = repo / "gnn_ranker" / "1" / "model.onnx"
    if not available:
        with pytest.raises(TensorRTUnavailable):
            build_engine(onnx_path, specs()["gnn_ranker"], tmp_path / "model.plan")
        pytest.skip(f"TensorRT engine not built: {reason}")
    plan = build_engine(onnx_path, specs()["gnn_ranker"], tmp_path / "model.plan")
    assert plan.stat().st_size > 0


@pytest.mark.parametrize("name", ["transformer_ranker", "gnn_ranker"])
def test_served_model_reads_ids_not_title_embeddings(exported, name):
    """The wire format: the exported graph has no embedding input the model can look up itself; only new
    candidates' embeddings travel, and a request with none sends one zero row per scenario."""
    repo, _, _ = exported
    model = onnx.load(str(repo / name / "1" / "model.onnx"))
    names = [i.name for i in model.graph.input]
    assert names == specs()[name].input_names
    assert not {"hist_emb", "user_nbr_emb", "cand_emb"} & set(names) and "new_cand_emb" in names
    one = ranker(name).to_wire(_batches(name, synthetic.store())[0])
    assert one["new_cand_emb"].shape == (1, 1, 384) and not one["new_cand_emb"].any()
