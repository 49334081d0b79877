"""`python -m training.train --check` treats served rankers exported with other feature widths as missing."""
import onnx
from onnx import TensorProto, helper

from libs.model_io import POP_FEATS, POP_FEATURES, REPEAT_FEATS, REPEAT_FEATURES, SCORE
from training.train.pipeline import stale_inputs


def _model(path, repeat_width, pop_width):
    inputs = [helper.make_tensor_value_info(REPEAT_FEATS, TensorProto.FLOAT, ["batch", "candidates", repeat_width]),
              helper.make_tensor_value_info(POP_FEATS, TensorProto.FLOAT, ["batch", "candidates", pop_width])]
    out = helper.make_tensor_value_info(SCORE, TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("Identity", [REPEAT_FEATS], [SCORE])], "g", inputs, [out])
    path.parent.mkdir(parents=True)
    onnx.save(helper.make_model(graph), str(path))


def test_widened_feature_groups_make_old_exports_stale(tmp_path):
    _model(tmp_path / "transformer_ranker" / "1" / "model.onnx", REPEAT_FEATURES, POP_FEATURES)
    _model(tmp_path / "gnn_ranker" / "1" / "model.onnx", 7, 4)  # exported before the cycle/season columns
    _model(tmp_path / "gnn_ranker" / "2" / "model.onnx", REPEAT_FEATURES, POP_FEATURES)
    stale = stale_inputs(tmp_path, {"transformer_ranker": "1", "gnn_ranker": "1"})
    assert [p.parts[-3] for p, _ in stale] == ["gnn_ranker"] and REPEAT_FEATS in stale[0][1]
    assert stale_inputs(tmp_path, {"transformer_ranker": "1", "gnn_ranker": "2"}) == []
    assert stale_inputs(tmp_path, {}) == []  # nothing served: nothing to compare
