"""Next-basket baselines: TIFU-KNN vector math by hand, GP-TopFreq tie order, repeat/explore slots."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.training.conftest import items_frame, purchases_frame
from training.evaluate.metrics import ranking_order
from training.evaluate.nbr_baselines import (
    GPTopFreq,
    RepeatExplore,
    TifuKNN,
    basket_weights,
    nearest_other_users,
    repeat_explore_order,
    user_vectors,
)
from training.evaluate.protocol import Scorer
from training.evaluate.split import make_split


def test_tifu_user_vector_by_hand() -> None:
    # One user, baskets in time order b0 {0}, b1 {0, 1}, b2 {2}; m = 2 groups: g0 = {b0}, g1 = {b1, b2}.
    rows = [
        ("U", 0, "1", "2011-01-01"),
        ("U", 0, "2", "2011-01-05"),
        ("U", 1, "2", "2011-01-05"),
        ("U", 2, "3", "2011-01-09"),
    ]
    r_b, r_g = 0.5, 0.25
    users, vectors = user_vectors(purchases_frame(rows), 6, r_b=r_b, r_g=r_g, m=2)
    # Basket decay over the whole history (newest = 1), group = mean of its baskets, group decay r_g^(m-1-g),
    # divided by the number of groups.
    g0 = r_b**2 * np.array([1, 0, 0, 0, 0, 0])
    g1 = (r_b * np.array([1, 1, 0, 0, 0, 0]) + np.array([0, 0, 1, 0, 0, 0])) / 2
    expected = (r_g * g0 + g1) / 2
    assert users.tolist() == ["U"]
    assert vectors.toarray()[0] == pytest.approx(expected)
    assert vectors.toarray()[0][:3] == pytest.approx([0.15625, 0.125, 0.25])


def test_tifu_groups_follow_the_authors_split() -> None:
    # 7 baskets into m = 3 groups: sizes 2, 2, 3 (the extra basket goes to the newest group).
    w = basket_weights(np.full(7, 7), np.arange(7), r_b=1.0, r_g=0.5, m=3)
    assert w == pytest.approx([0.25 / 2 / 3] * 2 + [0.5 / 2 / 3] * 2 + [1 / 3 / 3] * 3)
    # Fewer baskets than m: each basket is a group, decayed from exponent m - 1 as in the authors' code.
    w = basket_weights(np.array([2, 2]), np.array([0, 1]), r_b=0.5, r_g=0.5, m=3)
    assert w == pytest.approx([0.5 * 0.25 / 2, 1 * 0.5 / 2])


def test_tifu_blends_own_vector_with_nearest_other_customer() -> None:
    rows = [
        ("A", 0, "1", "2011-01-01"),
        ("A", 1, "1", "2011-01-01"),
        ("B", 0, "2", "2011-01-02"),
        ("B", 1, "2", "2011-01-02"),
        ("B", 2, "2", "2011-01-02"),
        ("C", 4, "3", "2011-01-03"),
    ]
    s = make_split(purchases_frame(rows), purchases_frame([]), items_frame(), "2011-01-15", "2011-01-29")
    _, vectors = user_vectors(s.train.purchases, 6, 1.0, 1.0, 1)
    assert nearest_other_users(vectors, 1).ravel().tolist() == [1, 0, 0]  # A<->B; C is nearest to A (sqrt 3 vs 2)
    model = TifuKNN(r_b=1.0, r_g=1.0, m=1, k=1, alpha=0.5)
    assert isinstance(model, Scorer)
    model.fit(s.train)
    assert model.predict(["A"])[0] == pytest.approx([1.0, 1.0, 0.5, 0, 0, 0])
    assert model.predict(["nobody"]).sum() == 0
    order = ranking_order(model.score(["A", "nobody"]))
    assert order[0, :3].tolist() == [0, 1, 2]


def test_gp_topfreq_orders_ties_and_fill_by_30_day_popularity() -> None:
    rows = [
        ("X", 0, "1", "2010-12-01"),
        ("X", 0, "2", "2010-12-20"),
        ("X", 1, "2", "2010-12-20"),
        ("X", 2, "3", "2010-12-21"),
    ]
    guests = [(None, 4, f"old{i}", "2010-11-01") for i in range(5)]  # popular, but more than 30 days ago
    guests += [(None, 5, "n1", "2011-01-10"), (None, 5, "n2", "2011-01-11"), (None, 2, "n3", "2011-01-12")]
    s = make_split(purchases_frame(rows), purchases_frame(guests), items_frame(), "2011-01-15", "2011-01-29")
    model = GPTopFreq()
    model.fit(s.train)
    # 0 (bought twice); 2 before 1 (tie at one invoice, 2 sold in the last 30 days); fill: 5 (2 recent orders),
    # then 4 (no recent orders, most all-time orders), then 3 (never sold).
    assert ranking_order(model.score(["X"]))[0].tolist() == [0, 2, 1, 5, 4, 3]


def test_repeat_explore_slots() -> None:
    bought = np.array([[True, True, True, False, False, False], [True, False, False, False, False, False]])
    repeat = np.array([[3.0, 2.0, 1.0, 0, 0, 0]] * 2)
    explore = np.array([[0.0, 0.1, 0.2, 0.3, 0.4, 0.5]] * 2)
    key = repeat_explore_order(repeat, explore, bought, n_explore=1, k=3)
    # Two repeat slots, one explore slot, then the rest of the repeats, then the rest of the explores.
    assert np.argsort(key[0]).tolist() == [0, 1, 5, 2, 4, 3]
    # One repeat only: explores move up and fill the list.
    assert np.argsort(key[1]).tolist() == [0, 5, 4, 3, 2, 1]
    assert all(sorted(row) == list(range(6)) for row in key.tolist())  # strict
    no_explore = repeat_explore_order(repeat, explore, bought, n_explore=0, k=3)
    assert np.argsort(no_explore[0]).tolist() == [0, 1, 2, 5, 4, 3]


@pytest.mark.parametrize("explore", ["itemknn", "popularity"])
def test_repeat_explore_puts_new_items_in_the_top(split, explore) -> None:
    model = RepeatExplore(n_explore=1, half_life_days=30, explore=explore)
    model.fit(split.train)
    order = ranking_order(model.score(["A", "nobody"]))
    # A bought 0 (twice) and 3: with k = 20 there are 19 repeat slots, so both repeats, then the explores.
    assert order[0, :2].tolist() == [0, 3]
    assert set(order[0, 2:].tolist()) == {1, 2, 4, 5}
    with pytest.raises(ValueError):
        RepeatExplore(explore="nope")
