import numpy as np
import pandas as pd
import pytest

from libs.features.frequency import frequency_prior, frequency_rank, frequency_text, order_counts
from tests.unit.features import synthetic


@pytest.fixture(scope="module")
def store():
    return synthetic.store()


def _gp_topfreq_order(store, ctx):
    """The GP-TopFreq order written out the slow way: bought items by (orders desc, popularity), then the rest by
    popularity."""
    items, counts = order_counts(ctx)
    n = dict(zip(items.tolist(), counts.tolist()))
    pos = store.popularity_position
    bought = sorted(n, key=lambda i: (-n[i], pos[i]))
    rest = [int(i) for i in store.top_popular if int(i) not in n]
    return bought + rest


def test_order_counts_counts_orders_not_lines(store):
    items, counts = order_counts(store.user_context("42"))  # item 3 in two orders, 4 and 7 in one each
    assert dict(zip(items.tolist(), counts.tolist())) == {3: 2, 4: 1, 7: 1}


@pytest.mark.parametrize("user", ["42", "1003", "1007", None])
def test_rank_is_the_gp_topfreq_order(store, user):
    ctx = store.user_context(user)
    order = _gp_topfreq_order(store, ctx)
    rank = frequency_rank(store.popularity_position, ctx, np.arange(store.n_items))
    assert sorted(rank.tolist()) == list(range(store.n_items))  # a permutation
    assert [int(i) for i in np.argsort(rank)] == order


def test_rank_does_not_depend_on_the_other_candidates(store):
    ctx = store.user_context("42")
    full = frequency_rank(store.popularity_position, ctx, np.arange(store.n_items))
    some = np.array([29, 3, 11, 7])
    assert frequency_rank(store.popularity_position, ctx, some).tolist() == full[some].tolist()


def test_fresh_purchases_count_and_unknown_products_rank_last(store):
    ctx = store.user_context("42", fresh=[(4, synthetic.NOW.value / 1e9 + 5), (4, synthetic.NOW.value / 1e9 + 9)])
    rank = frequency_rank(store.popularity_position, ctx, np.array([4, 3, -1]))
    assert rank.tolist() == [0, 1, store.n_items]  # item 4 is now in three orders, item 3 in two
    prior = frequency_prior(store, ctx, np.array([4, 3]))
    assert prior[0] == 0.0 and prior[1] == pytest.approx(-np.log(2.0))


def test_text_says_what_the_prior_read(store):
    ctx = store.user_context("42")
    never = next(int(i) for i in store.top_popular if int(i) not in (3, 4, 7))
    texts = frequency_text(store, ctx, np.array([3, 4, never]))
    assert texts[0] == "you ordered it 2 times before" and texts[1] == "you ordered it once before"
    assert texts[2] == f"it is number {int(store.popularity_position[never]) + 1} in orders over the last 28 days"


def test_empty_history_is_popularity_order(store):
    ctx = store.user_context(None, now=pd.Timestamp("2011-06-02"))
    rank = frequency_rank(store.popularity_position, ctx, store.top_popular)
    assert rank.tolist() == list(range(store.n_items))
