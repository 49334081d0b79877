import numpy as np

from loadtest.scale import ranker_inputs, synthetic_catalogue, targets
from libs.model_io import CAND_NBR_IDS, CAND_NBR_MASK
from libs.rankers import get as ranker


def test_synthetic_catalogue_keeps_the_real_one_and_its_structure():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(5, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    titles, out, source = synthetic_catalogue([f"T{i}" for i in range(5)], emb, 3)
    assert len(titles) == len(out) == 15 and titles[:5] == [f"T{i}" for i in range(5)]
    assert len(set(titles)) == 15  # distinct documents for BM25
    assert np.allclose(out[:5], emb) and np.allclose(np.linalg.norm(out, axis=1), 1.0)
    assert (out[5:] * emb[source[5:]]).sum(1).min() > 0.5  # copies stay near their source, not uniform noise


def test_ranker_inputs_fit_the_spec_and_span_the_catalogue():
    x = ranker_inputs("gnn_ranker", 1000, np.random.default_rng(0))
    spec = ranker("gnn_ranker").spec
    assert list(x) == spec.input_names and x[CAND_NBR_IDS].max() <= 1000 and x[CAND_NBR_IDS].min() >= 1
    assert np.array_equal(x[CAND_NBR_MASK], (x[CAND_NBR_IDS] > 0).astype(np.float32))


def test_targets_compare_largest_to_smallest():
    row = lambda f, ms, p50, rec: {
        "factor": f,
        "rankers": {"r": {"ort_ms": ms}},
        "retrieval": {"dense_p50_ms": p50, "dense_recall@10": rec},
    }
    got = targets([row(1, 1.0, 0.2, 1.0), row(100, 1.1, 0.9, 0.94)])
    assert got["r_time_x100_over_x1"]["ok"] and not got["dense_p50_x100_over_x1"]["ok"]
    assert not got["dense_recall@10_x100"]["ok"]
