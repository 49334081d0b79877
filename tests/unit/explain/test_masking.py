import numpy as np
import pytest

from libs.explain import Mask, masked_scenarios
from libs.features import POP_FEATURE_NAMES, stack
from libs.model_io import HIST_MASK, POP_FEATS, POP_FEATURES, QUERY_MASK, REPEAT_FEATS, TEXT_DIM, USER_NBR_MASK
from libs.rankers import get as ranker
from libs.rankers.gnn_ranker import gnn_inputs
from libs.rankers.transformer_ranker import transformer_inputs
from tests.unit.features import synthetic

T_SLOTS = ranker("transformer_ranker").history_slots
G_SLOTS = ranker("gnn_ranker").history_slots


@pytest.fixture(scope="module")
def store():
    return synthetic.store()


def test_each_mask_changes_only_its_evidence(store):
    ctx = store.user_context("42")
    t = transformer_inputs(store, ctx, np.array([3, 4, 5]), np.ones(TEXT_DIM, np.float32) / 20)
    masks = [
        Mask("history_item", 3),
        Mask("repeat"),
        Mask("popularity"),
        Mask("query"),
        Mask("query_embedding", np.zeros(TEXT_DIM)),
        Mask("similar_customers"),
    ]
    b = masked_scenarios(t, masks + [Mask("all", tuple(masks[:4] + masks[5:]))], T_SLOTS)
    assert b[HIST_MASK].shape[0] == 2 + len(masks)
    assert np.array_equal(b[HIST_MASK][0], t[HIST_MASK][0])
    assert b[HIST_MASK][1].sum() == t[HIST_MASK][0].sum() - 2  # item 3 was bought twice
    assert not b[REPEAT_FEATS][2].any() and b[REPEAT_FEATS][0].any()
    similar = POP_FEATURE_NAMES.index("log_similar_customers_score")
    shop_wide = [i for i in range(POP_FEATURES) if i != similar]
    assert b[POP_FEATS][0, :, shop_wide].any() and b[POP_FEATS][0, :, similar].any()
    assert not b[POP_FEATS][3, :, shop_wide].any()
    assert np.array_equal(b[POP_FEATS][3, :, similar], b[POP_FEATS][0, :, similar])
    assert not b[POP_FEATS][6, :, similar].any()
    assert np.array_equal(b[POP_FEATS][6, :, shop_wide], b[POP_FEATS][0, :, shop_wide])
    assert b[QUERY_MASK][4, 0] == 0 and b[QUERY_MASK][0, 0] == 1
    assert not b["query_emb"][5].any() and b["query_emb"][0].any()
    last = len(masks) + 1  # everything at once
    assert b[HIST_MASK][last].sum() == t[HIST_MASK][0].sum() - 2
    assert not b[REPEAT_FEATS][last].any() and not b[POP_FEATS][last].any() and b[QUERY_MASK][last, 0] == 0
    assert np.array_equal(t[HIST_MASK], b[HIST_MASK][:1])  # the input itself is never modified


def test_masks_a_ranker_does_not_read_leave_it_unchanged(store):
    ctx = store.user_context("42")
    g = masked_scenarios(gnn_inputs(store, ctx, np.array([3, 4])), [Mask("history_item", 4), Mask("query")], G_SLOTS)
    assert g[USER_NBR_MASK][1].sum() == g[USER_NBR_MASK][0].sum() - 1
    assert np.array_equal(g[USER_NBR_MASK][2], g[USER_NBR_MASK][0])


def test_bad_masks_and_batches_are_refused(store):
    t = transformer_inputs(store, store.user_context("42"), np.array([3]))
    with pytest.raises(ValueError):
        masked_scenarios(stack([t, t]), [Mask("repeat")], T_SLOTS)
    with pytest.raises(ValueError):
        Mask("nonsense")
