"""Baselines on the tiny split: hand-checked scores, tie-breaking, users without history, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.evaluate.baselines import (
    ALSMatrixFactorisation,
    ItemKNN,
    LightGCN,
    PersonalFrequency,
    Popularity,
    TimeDecayedFrequency,
    lexicographic,
    recent_popularity,
)
from training.evaluate.metrics import ranking_order
from training.evaluate.protocol import Scorer


def test_recent_popularity_counts_orders_in_the_window_guests_included(split) -> None:
    pop = recent_popularity(split.train, window_days=7)  # 2011-01-08 .. cut-off: A's invoice 2 and guests g1, g2
    # 7-day orders [1, 0, 0, 2, 0, 0]; all-time orders [2, 0, 1, 3, 1, 1] break ties, then the item index.
    assert ranking_order(pop[None, :])[0].tolist() == [3, 0, 2, 4, 5, 1]
    assert sorted(pop.tolist()) == [1, 2, 3, 4, 5, 6]


def test_popularity_is_the_same_for_everyone(split) -> None:
    model = Popularity(window_days=7)
    model.fit(split.train)
    scores = model.score(["A", "B", "nobody"])
    assert scores.shape == (3, 6) and (scores == scores[0]).all()
    assert ranking_order(scores)[0, 0] == 3


def test_personal_frequency_then_popularity(split) -> None:
    model = PersonalFrequency()
    model.fit(split.train)
    order = ranking_order(model.score(["A", "nobody"]))
    assert order[0, :2].tolist() == [0, 3]  # A bought 0 twice, 3 once
    assert order[1].tolist() == ranking_order(recent_popularity(split.train)[None, :])[0].tolist()


def test_time_decay_weights_halve_every_half_life(split) -> None:
    model = TimeDecayedFrequency(half_life_days=5)
    model.fit(split.train)
    # A: item 0 on 01-01 10:00 and 01-10 10:00, item 3 on 01-01 10:00; cut-off 01-15 00:00.
    old, recent = 13 + 14 / 24, 4 + 14 / 24  # ages in days
    personal = model.personal(["A"])[0]
    assert personal[0] == pytest.approx(0.5 ** (old / 5) + 0.5 ** (recent / 5))
    assert personal[3] == pytest.approx(0.5 ** (old / 5))
    assert model.personal(["nobody"]).sum() == 0


def test_time_decay_prefers_recent_over_frequent() -> None:
    from training.evaluate.split import make_split
    from tests.unit.training.conftest import items_frame, purchases_frame

    rows = [
        ("A", 1, "1", "2010-01-01"),
        ("A", 1, "2", "2010-01-02"),
        ("A", 2, "3", "2011-01-14"),
        ("A", 2, "4", "2011-01-16"),
    ]
    s = make_split(purchases_frame(rows), purchases_frame([]), items_frame(), "2011-01-15", "2011-01-29")
    freq, decay = PersonalFrequency(), TimeDecayedFrequency(half_life_days=30)
    freq.fit(s.train)
    decay.fit(s.train)
    assert ranking_order(freq.score(["A"]))[0, 0] == 1
    assert ranking_order(decay.score(["A"]))[0, 0] == 2


def test_lexicographic_orders_by_primary_then_secondary() -> None:
    primary = np.array([[0.0, 2.0, 2.0, 0.0]])
    secondary = np.array([5.0, 1.0, 3.0, 0.0])
    assert ranking_order(lexicographic(primary, secondary))[0].tolist() == [2, 1, 0, 3]


def test_itemknn_scores_co_purchased_items(split) -> None:
    model = ItemKNN(neighbours=0)
    model.fit(split.train)
    assert np.allclose(np.diag(model.similarity), 0)
    assert model.similarity[0, 3] == pytest.approx(1.0)  # only A bought 0 and 3: identical columns
    assert model.similarity[4, 5] == pytest.approx(1.0)
    assert model.similarity[0, 4] == 0
    order = ranking_order(model.score(["B"]))[0]
    assert set(order[:2]) == {4, 5}


@pytest.mark.parametrize(
    "factory",
    [lambda: ALSMatrixFactorisation(factors=4, iterations=3), lambda: LightGCN(dim=8, epochs=2, batch_size=4)],
)
def test_learned_models_are_deterministic_and_handle_unknown_users(split, factory) -> None:
    first, second = factory(), factory()
    assert isinstance(first, Scorer)
    first.fit(split.train)
    second.fit(split.train)
    users = ["A", "B", "nobody"]
    a, b = first.score(users), second.score(users)
    assert a.shape == (3, 6) and np.isfinite(a).all()
    assert np.array_equal(a, b)
    # An unknown user gets the popularity order.
    assert ranking_order(a)[2].tolist() == ranking_order(recent_popularity(split.train)[None, :])[0].tolist()


def test_scorers_never_see_window_purchases(split) -> None:
    model = PersonalFrequency()
    model.fit(split.train)
    assert model.personal(["A"])[0][1] == 0  # A buys item 1 only in the window
    assert isinstance(split.train.purchases, pd.DataFrame)


def test_symmetric_sparse_product_has_the_dense_gradient() -> None:
    import torch

    from training.evaluate.baselines import _SymmetricSpMM

    generator = torch.Generator().manual_seed(0)
    dense = torch.rand(6, 6, generator=generator) * (torch.rand(6, 6, generator=generator) > 0.5)
    dense = dense + dense.T
    x = torch.randn(6, 3, generator=generator, requires_grad=True)
    y = x.detach().clone().requires_grad_(True)
    (_SymmetricSpMM.apply(dense.to_sparse_csr(), x) ** 2).sum().backward()
    ((dense @ y) ** 2).sum().backward()
    assert torch.allclose(x.grad, y.grad, atol=1e-5)
