"""Similar customers (libs.features.neighbours): hand-computed vectors, neighbours and scores."""

import math

import numpy as np
import pytest

from libs.features.neighbours import DAY, CustomerNeighbours, decayed_vector

NOW = 1000 * DAY


def test_decayed_vector_half_life_and_norm():
    idx, w = decayed_vector(np.array([0, 1, 0]), np.array([NOW - 90 * DAY, NOW, NOW - 90 * DAY]), NOW, 90.0)
    assert idx.tolist() == [0, 1]
    # item 0: 0.5 + 0.5 = 1.0, item 1: 1.0 -> normalised 1/sqrt(2) each
    assert w == pytest.approx([1 / math.sqrt(2), 1 / math.sqrt(2)])
    idx, w = decayed_vector(np.array([0, 1]), np.array([NOW - 90 * DAY, NOW]), NOW, 90.0)
    assert w == pytest.approx([0.5 / math.sqrt(1.25), 1 / math.sqrt(1.25)])
    assert len(decayed_vector(np.array([]), np.array([]), NOW)[0]) == 0


def _neighbours(k):
    users = {
        "a": (np.array([0]), np.array([NOW])),  # [1, 0, 0]
        "b": (np.array([0, 1]), np.array([NOW, NOW])),  # [0.707, 0.707, 0]
        "c": (np.array([2]), np.array([NOW])),
    }  # [0, 0, 1]
    return CustomerNeighbours.build(users, 3, NOW, k=k)


def test_scores_are_the_mean_of_the_nearest_other_customers():
    nb = _neighbours(k=1)
    # "a" (item 0): b is the only other customer with similarity > 0 -> b's vector
    assert nb.scores(np.array([0]), np.array([NOW]), NOW, "a") == pytest.approx([0.7071068, 0.7071068, 0.0])
    # Anonymous with the same purchases: "a" itself (similarity 1) is the nearest
    assert nb.scores(np.array([0]), np.array([NOW]), NOW, None) == pytest.approx([1.0, 0.0, 0.0])
    # k = 2: still only b has similarity > 0, the mean is over k (a thin neighbourhood scores low)
    assert _neighbours(k=2).scores(np.array([0]), np.array([NOW]), NOW, "a") == pytest.approx(
        [0.3535534, 0.3535534, 0.0]
    )
    # Nothing in common with anyone, or no history: zeros
    assert not nb.scores(np.array([1]), np.array([NOW]), NOW, "b").any()
    assert not nb.scores(np.array([], np.int64), np.array([]), NOW, "a").any()


def test_fresh_purchases_move_the_neighbourhood():
    nb = _neighbours(k=1)
    # "c" also buys item 0 now: its vector is [0.707, 0, 0.707]; similarity to a 0.707, to b 0.5 -> a
    s = nb.scores(np.array([2, 0]), np.array([NOW, NOW]), NOW, "c")
    assert s == pytest.approx([1.0, 0.0, 0.0])


def test_pop_features_carry_the_similar_customers_column():
    from libs.features import POP_FEATURE_NAMES, pop_features_of
    from tests.unit.features import synthetic

    store = synthetic.store()
    col = POP_FEATURE_NAMES.index("log_similar_customers_score")
    ctx = store.user_context("42")
    assert ctx.user == "42"
    raw = store.neighbours.scores(ctx.items, ctx.ts, ctx.now, "42")
    cands = np.array([3, 4, 5, -1])
    f = pop_features_of(store, cands, ctx)
    expect = np.log1p(200.0 * raw[[3, 4, 5]]) / 3.0
    assert f[:3, col] == pytest.approx(expect, rel=1e-5)
    assert not f[3].any()  # unknown product
    np.testing.assert_array_equal(f[:, :col], pop_features_of(store, cands)[:, :col])
    assert not pop_features_of(store, cands)[:, col].any()  # without a context: no similar-customers signal
    assert not pop_features_of(store, cands, store.user_context(None))[:, col].any()  # anonymous, no history
    # The customer's own purchases never vote for them: remove everyone else and the column is 0.
    alone = CustomerNeighbours.build({"42": (ctx.items, ctx.ts)}, store.n_items, store.now)
    assert not alone.scores(ctx.items, ctx.ts, ctx.now, "42").any()
