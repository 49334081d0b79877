"""`python -m training.train --check` treats served models exported with other inputs than their served spec
(feature widths, or the embeddings the wire format no longer sends) as missing."""

import onnx
from onnx import TensorProto, helper

from libs.model_io import HIST_EMB, REPEAT_FEATS, SCORE, TEXT_DIM
from libs.rankers import specs

DTYPES = {"float32": TensorProto.FLOAT, "int64": TensorProto.INT64}


def _model(path, name, widths=None, extra=()):
    """A stand-in graph with the served spec's inputs of `name` (`widths` overrides the last dim of some)."""
    spec = specs()[name]
    inputs = [
        helper.make_tensor_value_info(
            t.name,
            DTYPES[t.dtype],
            [
                "batch",
                *[("candidates" if d == -1 else d) for d in t.shape[:-1]],
                (widths or {}).get(t.name, "candidates" if t.shape[-1] == -1 else t.shape[-1]),
            ],
        )
        for t in spec.inputs
    ]
    inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 50, TEXT_DIM]) for n in extra]
    out = helper.make_tensor_value_info(SCORE, TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("Identity", [spec.inputs[0].name], [SCORE])], "g", inputs, [out])
    path.parent.mkdir(parents=True)
    onnx.save(helper.make_model(graph), str(path))


def test_widened_feature_groups_make_old_exports_stale(tmp_path):
    from training.train.pipeline import stale_inputs

    _model(tmp_path / "transformer_ranker" / "1" / "model.onnx", "transformer_ranker")
    _model(tmp_path / "gnn_ranker" / "1" / "model.onnx", "gnn_ranker", {REPEAT_FEATS: 7})  # before the cycle columns
    _model(tmp_path / "gnn_ranker" / "2" / "model.onnx", "gnn_ranker")
    stale = stale_inputs(tmp_path, {"transformer_ranker": "1", "gnn_ranker": "1"})
    assert [p.parts[-3] for p, _ in stale] == ["gnn_ranker"] and REPEAT_FEATS in stale[0][1]
    assert stale_inputs(tmp_path, {"transformer_ranker": "1", "gnn_ranker": "2"}) == []
    assert stale_inputs(tmp_path, {}) == []  # nothing served: nothing to compare


def test_exports_from_before_the_wire_format_are_stale(tmp_path):
    from training.train.pipeline import stale_inputs

    _model(tmp_path / "transformer_ranker" / "1" / "model.onnx", "transformer_ranker", extra=(HIST_EMB,))
    stale = stale_inputs(tmp_path, {"transformer_ranker": "1"})
    assert len(stale) == 1 and HIST_EMB in stale[0][1]
