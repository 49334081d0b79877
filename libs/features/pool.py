"""The candidate pool: the items worth ranking for a customer when no query selects candidates (Recommend)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from libs.features.popularity import similar_customers_score
from libs.features.store import FeatureStore
from libs.features.user import UserContext
from libs.model_io import ITEM_NEIGHBOURS

POOL_HISTORY, POOL_CO_PURCHASE, POOL_SIMILAR, POOL_POPULAR = "history", "co_purchase", "similar_customers", "popular"
POOL_N_POPULAR, POOL_RECENT_ITEMS, POOL_MAX_HISTORY, POOL_N_SIMILAR = 100, 10, 200, 100
POOL_MAX = POOL_MAX_HISTORY + POOL_RECENT_ITEMS * ITEM_NEIGHBOURS + POOL_N_SIMILAR + POOL_N_POPULAR  # the largest pool


def candidate_parts(
    store: FeatureStore,
    ctx: UserContext,
    n_popular: int = POOL_N_POPULAR,
    recent_items: int = POOL_RECENT_ITEMS,
    max_history: int = POOL_MAX_HISTORY,
) -> list[tuple[str, np.ndarray]]:
    """The candidate pool's parts, each as (part name, item indices) in its own order (parts may overlap): the
    user's own past items (newest first, at most `max_history`), the co-purchase neighbours of their
    `recent_items` newest distinct items, the POOL_N_SIMILAR products the most similar customers buy most
    (similar_customers_score) that the user has not bought, and the `n_popular` most popular items (28 days)."""
    parts = []
    if len(ctx):
        rev = ctx.items[::-1]
        _, first = np.unique(rev, return_index=True)
        hist = rev[np.sort(first)][:max_history]
        parts.append((POOL_HISTORY, hist))
        nb = store.nbr_ids[hist[:recent_items]].ravel()
        parts.append((POOL_CO_PURCHASE, pd.unique(nb[nb > 0] - 1)))
        # Products new to the user that their neighbours buy: the rankers, trained with them, rank better than
        # without them (validation NDCG@20 per seed, README "Results").
        similar = similar_customers_score(store, ctx).copy()
        similar[ctx.items] = 0.0
        top = np.argsort(-similar, kind="stable")[:POOL_N_SIMILAR]
        parts.append((POOL_SIMILAR, top[similar[top] > 0]))
    parts.append((POOL_POPULAR, store.top_popular[:n_popular]))
    return parts


def candidate_pool(
    store: FeatureStore,
    ctx: UserContext,
    n_popular: int = POOL_N_POPULAR,
    recent_items: int = POOL_RECENT_ITEMS,
    max_history: int = POOL_MAX_HISTORY,
) -> np.ndarray:
    """Items worth ranking for a user when no query selects candidates: the union of `candidate_parts`, at most
    POOL_MAX items. One definition for training (the rankers learn on exactly this distribution), offline
    evaluation and the served Recommend (retrieval's user candidates), so the gateway ranks what `make eval`
    measured."""
    parts = candidate_parts(store, ctx, n_popular, recent_items, max_history)
    return pd.unique(np.concatenate([items for _, items in parts]).astype(np.int64))
