"""Per-shelf evaluation: its new baselines by hand, the shelf restriction and the invoice protocol."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.training.conftest import GUESTS, PURCHASES, items_frame, purchases_frame
from training.evaluate.shelves import (
    ConditionalItemKNN,
    Invoices,
    RecencyPopularity,
    RecentCoPurchase,
    RepurchaseCycle,
    Substitutions,
    BUY_AGAIN,
    _count_ranker,
    _fit_score,
    _invoice_metrics,
    _per_user,
    _similar_metrics,
    nearest_titles,
    restricted,
)
from training.evaluate.search_relevance import type_noun
from training.evaluate.split import make_split


@pytest.fixture
def split():
    return make_split(purchases_frame(PURCHASES), purchases_frame(GUESTS), items_frame(), "2011-01-15", "2011-01-29")


def test_restricted_puts_every_ineligible_item_below_the_eligible_ones():
    scores = np.array([[5.0, 4.0, 3.0, 2.0]])
    out = restricted(scores, np.array([[False, True, False, True]]))
    assert np.argsort(-out[0], kind="stable")[:2].tolist() == [1, 3]
    assert out[0, 0] == 0 and out[0, 2] == 0


def test_shelf_truth_splits_repeat_and_new_purchases(split):
    # A bought 0 again (repeat) and 1 for the first time (new); B bought 5 again. Everything first: perfect lists.
    perfect = np.zeros((len(split.users), split.n_items))
    perfect[0, [0, 1]] = 1.0
    perfect[1, 5] = 1.0
    again = _per_user(perfect, split, "buy_again")
    new = _per_user(perfect, split, "discover")
    assert again["ndcg@20"].tolist() == [1.0, 1.0]
    assert new["ndcg@20"].iloc[0] == 1.0 and np.isnan(new["ndcg@20"].iloc[1])  # B bought nothing new


def test_repurchase_cycle_prefers_the_product_that_is_due(split):
    model = RepurchaseCycle()
    model.fit(split.train)
    scores = model.score(["A"])[0]
    # A bought 0 on day 1 and day 10 (own cycle 9 days, last 5 days ago) and 3 once (pooled/default cycle).
    assert scores[0] > scores[3] > scores[5]


def test_recency_popularity_halves_per_half_life():
    rows = [("A", 0, "1", "2011-01-14 00:00"), ("B", 1, "2", "2011-01-07 00:00"), ("C", 1, "3", "2011-01-07 00:00")]
    s = make_split(
        purchases_frame(rows + [("A", 0, "9", "2011-01-20")]),
        purchases_frame([]).iloc[0:0],
        items_frame(),
        "2011-01-15",
        "2011-01-29",
    )
    model = RecencyPopularity(half_life_days=7.0)
    model.fit(s.train)
    assert model.scores[0] == pytest.approx(0.5 ** (1 / 7))
    assert model.scores[1] == pytest.approx(2 * 0.5 ** (8 / 7))


def test_conditional_itemknn_is_p_of_j_given_i(split):
    model = ConditionalItemKNN()
    model.fit(split.train)
    # Of the customers who bought 0 (A), all bought 3; of those who bought 3 (A), all bought 0; nobody bought 0 and 4.
    assert model.similarity[0, 3] == pytest.approx(1.0) and model.similarity[0, 4] == 0.0
    assert model.similarity[0, 0] == 0.0


def test_recent_copurchase_reads_only_the_last_baskets(split):
    model = RecentCoPurchase(baskets=1)
    model.fit(split.train)
    # A's last invoice before the cut-off ("2") holds only product 0, bought together with 3 in invoice "1".
    top = np.argsort(-model.score(["A"])[0], kind="stable")
    assert top[0] == 3


def test_invoice_protocol_leaves_one_in_and_averages_per_invoice(split):
    ds = type("DS", (), {"purchases": purchases_frame(PURCHASES)})()
    invoices = Invoices.of(ds, split)
    assert invoices.users == ["A"] and invoices.items[0].tolist() == [0, 1]  # B's window invoice has one product
    perfect = {0: np.array([1]), 1: np.array([0])}
    per = _invoice_metrics(invoices, lambda row, user, item: perfect[item])
    assert per["ndcg@10"].tolist() == [1.0] and per["hit_rate@10"].tolist() == [1.0]
    counts = _count_ranker(split.train, None)(0, "A", 0)
    assert counts[0] == 3 and 0 not in counts.tolist()  # 0's co-purchase, never the context itself
    assert isinstance(per, pd.DataFrame)


def test_substitutes_are_new_products_of_the_type_bought_while_the_old_one_was_not():
    """The similar-items proxy's units: (customer, type noun) with the most recent replaced product as context."""
    rows = [
        ("A", 0, "1", "2011-01-01 10:00"),  # white lantern
        ("A", 2, "2", "2011-01-05 10:00"),  # hanging lantern: A's most recent lantern
        ("A", 3, "2", "2011-01-05 10:00"),  # cakestand, bought again in the window: replaced by nothing
        ("A", 1, "10", "2011-01-20 10:00"),  # window: red lantern, new to A
        ("A", 3, "10", "2011-01-20 10:00"),
        ("B", 4, "3", "2011-01-05 10:00"),  # jumbo bag ... retrospot
        ("B", 5, "11", "2011-01-16 09:00"),  # window: lunch bag ... retrospot
    ]
    split = make_split(purchases_frame(rows), purchases_frame(GUESTS), items_frame(), "2011-01-15", "2011-01-29")
    nouns = np.array([type_noun(t) for t in items_frame()["title"]], dtype=object)
    assert nouns.tolist() == ["lantern", "lantern", "lantern", "tier", "retrospot", "retrospot"]
    units = Substitutions.of(split, nouns)
    assert units.users == ["A", "B"] and units.contexts.tolist() == [2, 4]
    assert [s.tolist() for s in units.substitutes] == [[1], [5]]
    lists = {0: np.array([1, 3]), 1: np.array([0])}
    per = _similar_metrics(units, nouns, lambda u: lists[u])
    assert per["ndcg@10"].tolist() == [1.0, 0.0] and per["hit_rate@10"].tolist() == [1.0, 0.0]
    assert per["recall@10"].tolist() == [1.0, 0.0] and per["same_type@10"].tolist() == [0.5, 0.0]


def test_nearest_titles_by_cosine_never_itself():
    emb = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [2.0, 0.1]])
    assert nearest_titles(emb, 0, 2).tolist() == [3, 1]  # cosine, not dot product: 3's length does not count
    assert 2 not in nearest_titles(emb, 2, 3).tolist()


def test_every_buy_again_baseline_fits_and_scores_the_split(split):
    """The rows' fit path (seeded as training.evaluate.run's), each baseline at its first grid point."""
    from training.evaluate.run import grid_points

    for candidate in BUY_AGAIN:
        scores = _fit_score(candidate, grid_points(candidate.grid)[0], split)
        assert scores.shape == (len(split.users), split.n_items) and np.isfinite(scores).all()
