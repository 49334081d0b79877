"""The purchase-frequency prior: GP-TopFreq (Li et al., "A Next Basket Recommendation Reality Check", TOIS 2023) as
a score the fusion blends with the rankers (libs.fusion).

The customer's GP-TopFreq order over the whole catalogue: the products they bought, most orders first (ties by
popularity), then every other product by popularity (serving: 28-day orders, then all-time, FeatureStore.top_popular;
the offline GP-TopFreq baseline passes the paper's 30-day order to the same `frequency_rank`).
A product's prior is -log(1 + its 0-based rank in that order): its decay is that of the rank discount of
NDCG. It depends only on the customer's history (fresh purchases included) and the store's popularity, never on
the other candidates of a request, so ranking and explanation compute the same value for a product.
"""

from __future__ import annotations

import numpy as np

from libs.features.store import FeatureStore
from libs.features.user import UserContext


def order_counts(ctx: UserContext) -> tuple[np.ndarray, np.ndarray]:
    """(items, number of distinct orders of the customer that contain each), items ascending."""
    if not len(ctx):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = np.unique(np.stack([ctx.items, ctx.baskets]), axis=1)
    return np.unique(pairs[0], return_counts=True)


def frequency_rank(position: np.ndarray, ctx: UserContext, cand_idx: np.ndarray) -> np.ndarray:
    """[C] each candidate's 0-based rank in the customer's GP-TopFreq order, given each item's 0-based `position`
    in the popularity order ([n_items]; products unknown to the store, index < 0, rank last)."""
    cand_idx = np.asarray(cand_idx, np.int64)
    n_items = len(position)
    items, counts = order_counts(ctx)
    bought_order = items[np.lexsort((position[items], -counts))]
    rank = np.full(len(cand_idx), n_items, np.int64)
    known = cand_idx >= 0
    own = np.full(n_items, -1, np.int64)
    own[bought_order] = np.arange(len(bought_order))
    c = cand_idx[known]
    # A product not bought: after the bought ones, by popularity among the products not bought.
    bought_before = np.searchsorted(np.sort(position[items]), position[c])
    rank[known] = np.where(own[c] >= 0, own[c], len(items) + position[c] - bought_before)
    return rank


def frequency_prior(store: FeatureStore, ctx: UserContext, cand_idx: np.ndarray) -> np.ndarray:
    """[C] float64: -log(1 + GP-TopFreq rank) of each candidate for this customer."""
    return -np.log1p(frequency_rank(store.popularity_position, ctx, cand_idx).astype(np.float64))


def frequency_text(store: FeatureStore, ctx: UserContext, cand_idx: np.ndarray) -> list[str]:
    """[C] what the prior read about each candidate, in words (the text of its PURCHASE_FREQUENCY evidence)."""
    items, counts = order_counts(ctx)
    orders = dict(zip(items.tolist(), counts.tolist()))
    out = []
    for c in np.asarray(cand_idx, np.int64).tolist():
        if c in orders:
            n = orders[c]
            out.append(f"you ordered it {n} times before" if n > 1 else "you ordered it once before")
        elif c >= 0:
            out.append(f"it is number {int(store.popularity_position[c]) + 1} in orders over the last 28 days")
        else:
            out.append("")
    return out
