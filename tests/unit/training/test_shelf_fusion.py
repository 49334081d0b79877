"""Per-shelf fusion weights: fitted by each shelf's own objective over fit_fusion's grids, the mixed list's weights
kept unless a trial beats them."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from libs.fusion import PRIOR, Fusion
from training.train.shelf_fusion import customer_objective, fit_weights, lists_objective

BASE = Fusion({"a": 0.5, "b": 0.5, PRIOR: 0.1}, {"a": 0.0, "b": 0.0, PRIOR: 0.0}, {"a": 1.0, "b": 1.0, PRIOR: 1.0})


def test_the_grid_finds_the_weights_the_objective_prefers_and_keeps_the_prior_grid_second():
    def objective(f: Fusion) -> float:  # best at a = 0.8, then the smallest prior weight above 0
        return -abs(f.weights["a"] - 0.8) - abs(f.weights[PRIOR] - 0.05)

    weights, value, trials = fit_weights(BASE, objective, ["a", "b"], (0.0, 0.05, 0.1))
    assert weights == {"a": 0.8, "b": 0.2, PRIOR: 0.05} and value == 0.0
    assert trials[0]["weights"] == dict(BASE.weights)  # the incumbent is scored first
    assert len(trials) == 1 + 21 + 3


def test_ties_keep_the_mixed_lists_weights():
    weights, _, _ = fit_weights(BASE, lambda f: 1.0, ["a", "b"], (0.0, 0.1))
    assert weights == dict(BASE.weights)


def test_a_customer_shelf_is_scored_on_its_eligible_products_only():
    # One customer, 4 products; a ranks 0 first, b ranks 3 first. Only product 3 is eligible and relevant.
    components = {"a": np.array([[4.0, 3.0, 2.0, 1.0]]), "b": np.array([[1.0, 2.0, 3.0, 4.0]])}
    components[PRIOR] = np.zeros((1, 4))
    pools = np.ones((1, 4), bool)
    truth = sp.csr_matrix(np.array([[False, False, False, True]]))
    eligible = np.array([[False, False, False, True]])
    objective = customer_objective(components, pools, truth, eligible)
    assert objective(BASE.with_weights({"a": 1.0})) == 1.0  # ineligible products fall below the eligible one
    unrestricted = customer_objective(components, pools, truth, np.ones((1, 4), bool))
    assert unrestricted(BASE.with_weights({"a": 1.0})) < unrestricted(BASE.with_weights({"b": 1.0})) == 1.0


def test_lists_are_averaged_per_unit_first():
    # Unit 0 has two lists (one perfect for b, one perfect for a), unit 1 one list perfect for b.
    comps = [
        {"a": np.array([0.0, 1.0]), "b": np.array([1.0, 0.0])},
        {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])},
        {"a": np.array([0.0, 1.0]), "b": np.array([1.0, 0.0])},
    ]
    cands = [np.array([5, 6])] * 3
    relevant = [np.array([5]), np.array([5]), np.array([5])]
    objective = lists_objective(comps, cands, relevant, np.array([0, 0, 1]), k=1)
    assert objective(BASE.with_weights({"b": 1.0})) == (0.5 + 1.0) / 2
    assert objective(BASE.with_weights({"a": 1.0})) == (0.5 + 0.0) / 2


def test_the_lists_ndcg_is_the_evaluations_ranked_list_ndcg():
    from training.evaluate.metrics import ranked_list_ndcg

    rng = np.random.default_rng(0)
    comps, cands, relevant = [], [], []
    for n in (3, 12, 25, 1):
        comps.append({"a": rng.normal(size=n), "b": rng.normal(size=n)})
        cands.append(rng.choice(100, n, replace=False))
        relevant.append(np.concatenate([cands[-1][: max(1, n // 3)], [100 + n]]))  # one relevant outside the list
    fusion = BASE.with_weights({"a": 0.3, "b": 0.7})
    want = [
        ranked_list_ndcg(c[np.argsort(-fusion.combine(s), kind="stable")][:10], r, 10)
        for s, c, r in zip(comps, cands, relevant)
    ]
    got = lists_objective(comps, cands, relevant, np.arange(4), k=10)(fusion)
    assert got == pytest.approx(np.mean(want), abs=1e-6)  # torchmetrics computes in float32


def test_the_customer_ndcg_is_the_evaluations_restricted_ndcg():
    from training.evaluate.metrics import ndcg_at_k
    from training.evaluate.shelves import restricted

    rng = np.random.default_rng(1)
    n_users, n_items = 6, 40
    components = {"a": rng.normal(size=(n_users, n_items)), "b": rng.normal(size=(n_users, n_items))}
    components[PRIOR] = rng.normal(size=(n_users, n_items))
    pools = rng.random((n_users, n_items)) < 0.7
    components["a"][~pools] = -1.0e6 - np.arange(n_items)[None, :].repeat(n_users, 0)[~pools]  # the floor
    dense = rng.random((n_users, n_items)) < 0.1
    dense[3] = False  # a customer without ground truth does not count
    truth = sp.csr_matrix(dense)
    eligible = rng.random((n_users, n_items)) < 0.6
    for weights in ({"a": 0.3, "b": 0.7, PRIOR: 0.1}, {"a": 1.0}):
        fusion = BASE.with_weights(weights)
        fused = np.where(pools, fusion.combine(components), components["a"])
        want = ndcg_at_k(restricted(fused, eligible), truth.multiply(eligible).tocsr())
        got = customer_objective(components, pools, truth.multiply(eligible).tocsr(), eligible, k=20)(fusion)
        assert got == pytest.approx(want, abs=1e-6)
