import numpy as np
import pandas as pd
import pytest

from libs.features import candidate_pool, history_features, repeat_features, user_neighbours
from libs.model_io import MAX_HISTORY, POP_FEATS, REPEAT_FEATS, TEXT_DIM
from libs.rankers.gnn_ranker import SPEC as GNN_RANKER_SPEC
from libs.rankers.gnn_ranker import gnn_inputs
from libs.rankers.transformer_ranker import SPEC as TRANSFORMER_RANKER_SPEC
from libs.rankers.transformer_ranker import transformer_inputs
from tests.unit.features import synthetic


@pytest.fixture(scope="module")
def store():
    return synthetic.store()


def _check_spec(spec, inputs, n_cand):
    assert list(inputs) == spec.input_names
    for t in spec.inputs:
        a = inputs[t.name]
        assert a.dtype == t.np_dtype, t.name
        want = tuple(n_cand if d == -1 else d for d in t.shape)
        assert a.shape[1:] == want, t.name


def test_inputs_match_model_io(store):
    ctx = store.user_context("42")
    cands = np.array([3, 4, 5, 29])
    _check_spec(TRANSFORMER_RANKER_SPEC, transformer_inputs(store, ctx, cands, np.ones(TEXT_DIM)), 4)
    _check_spec(GNN_RANKER_SPEC, gnn_inputs(store, ctx, cands), 4)


def test_history_is_oldest_first_left_padded(store):
    ctx = store.user_context("42")
    ids, feats, mask = history_features(ctx)
    assert mask.sum() == 4 and mask[-4:].all() and not mask[:-4].any()
    assert list(ids[-4:]) == [4 + 1, 3 + 1, 3 + 1, 7 + 1] or list(ids[-4:]) == [4 + 1, 3 + 1, 7 + 1, 3 + 1]
    assert feats[-1, 2] == 1.0 and feats[-4, 2] == 0.0  # last basket flag
    assert ids.shape == (MAX_HISTORY,)


def test_repeat_features_count_and_recency(store):
    ctx = store.user_context("42")
    r = repeat_features(ctx, np.array([3, 4, 5, -1]))
    assert r[0, 0] == 1 and r[1, 0] == 1 and not r[2].any() and not r[3].any()
    assert r[0, 1] == pytest.approx(np.log1p(2) / 3)
    assert r[0, 2] == pytest.approx(np.exp(-2 / 14), rel=1e-4)  # last bought 2 days ago
    assert r[1, 2] == pytest.approx(np.exp(-40 / 14), rel=1e-4)


def test_fresh_events_extend_history_and_new_user(store):
    later = synthetic.NOW + pd.Timedelta(hours=1)
    ctx = store.user_context("42", fresh=[("P9", later), (11, later)])
    assert len(ctx) == 6 and set(ctx.items[-2:]) == {9, 11}
    assert ctx.baskets[-1] == ctx.baskets[-2] == ctx.baskets[-3] + 1
    assert repeat_features(ctx, np.array([9]))[0, 0] == 1
    new = store.user_context("never-seen", fresh=[("P5", later)])
    assert len(new) == 1 and repeat_features(new, np.array([5]))[0, 0] == 1
    empty = store.user_context(None)
    ids, _, mask = user_neighbours(empty)
    assert not mask.any() and not ids.any()


def test_new_product_candidate_needs_embedding(store):
    ctx = store.user_context("42")
    emb = np.full((2, TEXT_DIM), 0.5, np.float32)
    t = transformer_inputs(store, ctx, np.array([-1, 3]), new_cand_emb=emb)
    assert t["cand_ids"][0, 0] == 0 and np.allclose(t["cand_emb"][0, 0], 0.5)
    assert not t[POP_FEATS][0, 0].any() and not t[REPEAT_FEATS][0, 0].any()
    g = gnn_inputs(store, ctx, np.array([-1, 3]), new_cand_emb=emb)
    assert not g["cand_nbr_mask"][0, 0].any()
    with pytest.raises(ValueError):
        transformer_inputs(store, ctx, np.array([-1]))


def test_candidate_pool_has_history_neighbours_popular(store):
    ctx = store.user_context("42")
    pool = candidate_pool(store, ctx, n_popular=5)
    assert {3, 4, 7} <= set(pool.tolist())
    assert set(store.top_popular[:5].tolist()) <= set(pool.tolist())
    assert len(pool) == len(set(pool.tolist()))
    assert len(candidate_pool(store, store.user_context(None), n_popular=5)) == 5


def test_pool_adds_what_similar_customers_buy_that_the_user_never_bought(store):
    from libs.features import candidate_parts, similar_customers_score
    from libs.features import POOL_N_SIMILAR, POOL_SIMILAR

    ctx = store.user_context("42")
    parts = dict(candidate_parts(store, ctx))
    similar = parts[POOL_SIMILAR]
    score = similar_customers_score(store, ctx)
    assert 0 < len(similar) <= POOL_N_SIMILAR
    assert not set(similar.tolist()) & set(ctx.items.tolist())
    assert (score[similar] > 0).all() and (np.diff(score[similar]) <= 0).all()  # strongest first
    assert set(similar.tolist()) <= set(candidate_pool(store, ctx).tolist())
    assert POOL_SIMILAR not in dict(candidate_parts(store, store.user_context(None)))  # nobody to be similar to
