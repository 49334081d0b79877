from dataclasses import replace

import numpy as np
import pytest
import torch

from libs.explain import Mask, masked_scenarios
from libs.model_io import TEXT_DIM
from libs.rankers import get as ranker
from tests.unit.features import synthetic
from training.models.rankers import GnnRanker, TransformerRanker
from training.train.data import build_examples, make_batch
from training.train.trainer import TrainConfig, listwise_loss, score_catalogue, train_ranker


@pytest.fixture(scope="module")
def store():
    return synthetic.store()


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {
        "transformer_ranker": TransformerRanker(synthetic.N_ITEMS, dim=16).eval(),
        "gnn_ranker": GnnRanker(synthetic.N_ITEMS, torch.from_numpy(synthetic.item_embeddings()), dim=16).eval(),
    }


def _run(model, spec, inputs):
    with torch.no_grad():
        return [o.numpy() for o in model(*[torch.from_numpy(inputs[n]) for n in spec.input_names])]


def _inputs(name, store, user, cands, query=None):
    r = ranker(name)
    return r.inputs(store, store.user_context(user), cands, query if r.reads_query else None), r.spec


@pytest.mark.parametrize("name", ["transformer_ranker", "gnn_ranker"])
def test_output_shapes_and_attention(models, store, name):
    inputs, spec = _inputs(name, store, "42", np.array([3, 4, 5, 6, 7]))
    outs = _run(models[name], spec, inputs)
    assert [o.shape[:2] for o in outs] == [(1, 5)] * len(outs)
    assert outs[0].shape == (1, 5)
    for att in outs[1:]:
        assert np.allclose(att.sum(-1), 1.0, atol=1e-5)  # user has history / neighbours
    assert all(np.isfinite(o).all() for o in outs)


@pytest.mark.parametrize("name", ["transformer_ranker", "gnn_ranker"])
def test_candidates_are_scored_independently(models, store, name):
    a, spec = _inputs(name, store, "42", np.array([3, 4, 5, 6]))
    b, _ = _inputs(name, store, "42", np.array([6, 20, 3]))
    sa, sb = _run(models[name], spec, a)[0][0], _run(models[name], spec, b)[0][0]
    assert sa[3] == pytest.approx(sb[0], abs=1e-5) and sa[0] == pytest.approx(sb[2], abs=1e-5)


@pytest.mark.parametrize("name", ["transformer_ranker", "gnn_ranker"])
def test_masking_changes_scores_and_zeroes_attention(models, store, name):
    inputs, spec = _inputs(name, store, "42", np.array([3, 4, 5]))
    batch = masked_scenarios(inputs, [Mask("history_item", 3), Mask("repeat")], ranker(name).history_slots)
    outs = _run(models[name], spec, batch)
    assert not np.allclose(outs[0][0], outs[0][1]) and not np.allclose(outs[0][0], outs[0][2])
    if name == "transformer_ranker":
        hist_ids = batch["hist_ids"][1]
        assert np.allclose(outs[1][1][:, hist_ids == 4], 0.0)  # item 3 (id 4) masked: no attention on it
    else:
        ids = batch["user_nbr_ids"][1]
        assert np.allclose(outs[1][1][:, ids == 4], 0.0)


@pytest.mark.parametrize("name", ["transformer_ranker", "gnn_ranker"])
def test_cold_user_and_new_product_are_finite(models, store, name):
    ctx = store.user_context(None)
    cands = np.array([-1, 2])
    emb = np.ones((2, TEXT_DIM), np.float32) / np.sqrt(TEXT_DIM)
    inputs, spec = ranker(name).inputs(store, ctx, cands, new_cand_emb=emb), ranker(name).spec
    outs = _run(models[name], spec, inputs)
    assert all(np.isfinite(o).all() for o in outs)
    assert np.allclose(outs[1], 0.0)  # no history / user neighbours: nothing to attend to
    if name == "gnn_ranker":
        assert np.allclose(outs[2][0, 0], 0.0)  # the new product has no co-purchase neighbours yet


def test_query_path_changes_transformer_scores(models, store):
    q = synthetic.item_embeddings()[5]
    with_q, spec = _inputs("transformer_ranker", store, "42", np.array([3, 5]), q)
    without, _ = _inputs("transformer_ranker", store, "42", np.array([3, 5]))
    assert not np.allclose(
        _run(models["transformer_ranker"], spec, with_q)[0], _run(models["transformer_ranker"], spec, without)[0]
    )


def test_listwise_loss_ignores_padding():
    scores = torch.tensor([[2.0, 0.0, 100.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]])  # row 2 has no positive: skipped
    expected = -torch.log_softmax(torch.tensor([2.0, 0.0]), 0)[0]
    assert float(listwise_loss(scores, labels)) == pytest.approx(float(expected))


@pytest.mark.parametrize("name", ["transformer_ranker", "gnn_ranker"])
def test_training_smoke_and_catalogue_scores(name):
    p = synthetic.purchases(n_users=40)
    emb = synthetic.item_embeddings()
    examples = build_examples(p, None, emb, synthetic.NOW, n_windows=4)
    assert examples
    inputs, labels = make_batch(name, examples[:3], np.random.default_rng(0), size=16)
    assert labels.shape[0] == 3 and (labels == 1).any()
    model, info = train_ranker(
        name, examples, synthetic.N_ITEMS, emb, TrainConfig(epochs=2, dim=16, batch_size=8), progress=False
    )
    assert len(info["loss_per_epoch"]) == 2 and np.isfinite(info["loss_per_epoch"]).all()
    store = synthetic.store()
    scores = score_catalogue(name, model, store, ["42", "unknown"])
    assert scores.shape == (2, synthetic.N_ITEMS) and np.isfinite(scores).all()
    assert scores[0, 3] > -1e5  # in the pool (own past item)
    assert (scores[1] > -1e5).sum() > 0  # cold user: popular items ranked by the model


def test_members_trained_in_parallel_workers_equal_one_after_the_other():
    """Training is reproducible: the same seeds give the same weights, in worker processes or in-process, and a
    warm start continues from its `init`."""
    from training.train.trainer import MemberJob, train_members

    p = synthetic.purchases(n_users=40)
    emb = synthetic.item_embeddings()
    examples = build_examples(p, None, emb, synthetic.NOW, n_windows=3)
    cfg = TrainConfig(epochs=1, dim=16, batch_size=8)
    warm = train_ranker("gnn_ranker", examples, synthetic.N_ITEMS, emb, cfg, progress=False)[0]
    jobs = [
        MemberJob("transformer_ranker", cfg, "t0"),
        MemberJob("gnn_ranker", cfg, "g0"),
        MemberJob("gnn_ranker", replace(cfg, seed=1), "g1"),
        MemberJob("gnn_ranker", cfg, "warm", init=warm),
    ]
    parallel = train_members(jobs, examples, synthetic.N_ITEMS, emb, progress=False, workers=2)
    before = {k: v.clone() for k, v in warm.state_dict().items()}
    serial = train_members(jobs, examples, synthetic.N_ITEMS, emb, progress=False, workers=1)
    for (a, info_a), (b, info_b) in zip(parallel, serial):
        assert a.state_dict().keys() == b.state_dict().keys()
        assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
        assert info_a["loss_per_epoch"] == info_b["loss_per_epoch"]
    g0, g1, tuned = (m.state_dict() for m, _ in parallel[1:])
    assert not all(torch.equal(g0[k], g1[k]) for k in g0)  # another seed, other weights
    assert not all(torch.equal(g0[k], tuned[k]) for k in g0)  # the warm start did not start from scratch
    assert any(not torch.equal(before[k], tuned[k]) for k in before)


@pytest.mark.parametrize("name", ["transformer_ranker", "gnn_ranker"])
def test_seed_ensemble_means_members_and_checkpoint_roundtrip(models, store, name, tmp_path):
    import pandas as pd

    from training.models.rankers import SeedEnsemble
    from training.train.checkpoints import latest_checkpoint, load_checkpoint, save_checkpoint

    torch.manual_seed(1)
    other = (
        TransformerRanker(synthetic.N_ITEMS, dim=16)
        if name == "transformer_ranker"
        else GnnRanker(synthetic.N_ITEMS, torch.from_numpy(synthetic.item_embeddings()), dim=16)
    ).eval()
    ensemble = SeedEnsemble([models[name], other]).eval()
    inputs, spec = _inputs(name, store, "42", np.array([3, 4, 5]))
    a, b, e = _run(models[name], spec, inputs), _run(other, spec, inputs), _run(ensemble, spec, inputs)
    for x, y, z in zip(a, b, e):
        assert np.allclose(z, (x + y) / 2, atol=1e-6)
    path = tmp_path / "checkpoints" / f"{name}-2011-05-01.pt"
    save_checkpoint(path, ensemble, name, pd.Timestamp("2011-05-01"), "test", {}, 2)
    assert latest_checkpoint(tmp_path, name, pd.Timestamp("2011-06-01")) == path
    assert latest_checkpoint(tmp_path, name, pd.Timestamp("2011-04-01")) is None
    loaded, meta = load_checkpoint(path, synthetic.item_embeddings())
    assert isinstance(loaded, SeedEnsemble) and meta["ensemble"]
    for x, y in zip(e, _run(loaded, spec, inputs)):
        assert np.allclose(x, y, atol=1e-6)


@pytest.mark.parametrize("name", ["transformer_ranker", "gnn_ranker"])
def test_serving_form_scores_exactly_like_the_trained_model(models, store, name, tmp_path):
    from training.export.onnx_export import export_model
    from training.models.rankers import SeedEnsemble, serving_form

    model = SeedEnsemble([models[name], models[name]]).eval()
    served = serving_form(model)
    inputs, spec = _inputs(name, store, "42", np.arange(12))
    for a, b in zip(_run(model, spec, inputs), _run(served, spec, inputs)):
        assert np.allclose(a, b, atol=1e-6)
    if name == "gnn_ranker":  # the catalogue-wide tables are constants of the serving form, not recomputed
        assert all(hasattr(m, "frozen_table") for m in served.members)
        assert not hasattr(models[name], "frozen_table")
    report = export_model(served, spec, [inputs], tmp_path, tolerance=1e-4, reference=model)
    assert report.ok
