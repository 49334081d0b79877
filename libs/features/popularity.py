"""Item popularity: the columns of FeatureStore.pop (the rankers' pop_feats input), and the popularity order that
the candidate pool, the purchase-frequency prior and the offline baselines share.

Counts are order lines (invoice x product), guests included, before the store's `now`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from libs.model_io import POP_FEATURES

if TYPE_CHECKING:
    from libs.features.store import FeatureStore
    from libs.features.user import UserContext

DAY = 86400.0
YEAR_DAYS = 365


class Pop(IntEnum):
    """Columns of FeatureStore.pop and of the pop_feats input."""

    LOG_ORDERS_7D = 0
    LOG_ORDERS_28D = 1
    LOG_ORDERS_ALL = 2
    ITEM_REPEAT_RATE = 3
    # season: orders in the same calendar window one year earlier (0 where the data lacks it)
    LOG_ORDERS_YEAR_AGO_28D = 4
    LOG_ORDERS_YEAR_AGO_NEXT_28D = 5
    # per (customer, candidate): popularity among the customer's most similar customers
    LOG_SIMILAR_CUSTOMERS_SCORE = 6


POP_FEATURE_NAMES = tuple(column.name.lower() for column in Pop)
assert len(POP_FEATURE_NAMES) == POP_FEATURES
# (column, days before now or None = all time, scale): log1p(orders) / scale is about [0, 1].
ORDER_WINDOWS = ((Pop.LOG_ORDERS_7D, 7, 5.0), (Pop.LOG_ORDERS_28D, 28, 6.0), (Pop.LOG_ORDERS_ALL, None, 8.0))
# (column, days around now - 365 d: from, to, scale as the 28-day column)
SEASON_WINDOWS = ((Pop.LOG_ORDERS_YEAR_AGO_28D, -14, 14, 6.0), (Pop.LOG_ORDERS_YEAR_AGO_NEXT_28D, 0, 28, 6.0))
SIMILAR_SCALE = (200.0, 3.0)  # log1p(200 x score) / 3: about 0.3 at the median positive, 1 at the 99th percentile


def order_lines(items: np.ndarray, ts: np.ndarray, now_s: float, n_items: int, days: float | None = None) -> np.ndarray:
    """[n_items] int: order lines of each item in the `days` before `now_s` (None: all of them)."""
    items = np.asarray(items, np.int64)
    keep = slice(None) if days is None else np.asarray(ts, np.float64) >= now_s - days * DAY
    return np.bincount(items[keep], minlength=n_items)[:n_items]


def popularity_order(recent: np.ndarray, all_time: np.ndarray) -> np.ndarray:
    """Item indices, most popular first: by `recent` orders, then `all_time` orders, then item index (any
    increasing transform of the counts gives the same order)."""
    return np.lexsort((np.arange(len(recent)), -np.asarray(all_time), -np.asarray(recent)))


def orders_in_window(pop: np.ndarray, days: int | None) -> np.ndarray:
    """[...] int64 orders in the last `days` days (None: all time) read back from popularity feature rows [..., F]:
    the count the models read, exact (log1p of counts far below float32's 2^24)."""
    column, _, scale = next(w for w in ORDER_WINDOWS if w[1] == days)
    return np.rint(np.expm1(pop[..., column].astype(np.float64) * scale)).astype(np.int64)


def popularity_features(items: np.ndarray, ts: np.ndarray, now_s: float, n_items: int) -> np.ndarray:
    """[n_items, POP_FEATURES]: the ORDER_WINDOWS columns; the others are filled by FeatureStore.build."""
    out = np.zeros((n_items, POP_FEATURES), np.float32)
    for column, days, scale in ORDER_WINDOWS:
        out[:, column] = np.log1p(order_lines(items, ts, now_s, n_items, days)) / scale
    return out


def item_repeat_rate(users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """Per item: share of its customers who bought it on two or more invoices, smoothed ((r + 1) / (n + 4))."""
    if len(items) == 0:
        return np.full(n_items, 0.25, np.float32)
    pairs = pd.DataFrame({"u": users, "i": items}).groupby(["i", "u"]).size()
    buyers = pairs.groupby(level=0).size()
    repeaters = (pairs >= 2).groupby(level=0).sum()
    out = np.full(n_items, 0.25, np.float32)
    idx = buyers.index.to_numpy()
    out[idx] = ((repeaters.to_numpy() + 1.0) / (buyers.to_numpy() + 4.0)).astype(np.float32)
    return out


def season_features(items: np.ndarray, ts: np.ndarray, now_s: float, n_items: int, data_start_s: float) -> np.ndarray:
    """[n_items, 2] year-over-year season: log1p(orders in [now - 365 d + a, now - 365 d + b)) / scale for each
    (a, b, scale) of SEASON_WINDOWS (the 4 weeks around this date last year; the 4 weeks after it). Only sales
    before `now` count (every window ends at least 337 days before it). A window that starts before the data does
    (the day of `data_start_s`) is 0 = "no season signal": a partly covered window would understate it."""
    out = np.zeros((n_items, len(SEASON_WINDOWS)), np.float32)
    items, ts = np.asarray(items, np.int64), np.asarray(ts, np.float64)
    first_day = np.floor(data_start_s / DAY) * DAY
    anchor = now_s - YEAR_DAYS * DAY
    for j, (_, a, b, scale) in enumerate(SEASON_WINDOWS):
        lo, hi = anchor + a * DAY, min(anchor + b * DAY, now_s)
        if lo < first_day:
            continue
        keep = (ts >= lo) & (ts < hi)
        out[:, j] = np.log1p(np.bincount(items[keep], minlength=n_items)[:n_items]) / scale
    return out


def similar_customers_score(store: FeatureStore, ctx: UserContext) -> np.ndarray:
    """[n_items] float32 log1p(200 x mean of the k most similar customers' vectors) / 3 (libs.features.neighbours),
    for the context as given (fresh events included); cached on a stored context (training reuses them)."""
    if store.neighbours is None or len(ctx) == 0:
        return np.zeros(store.n_items, np.float32)
    cached = getattr(ctx, "_similar", None)
    if cached is not None and cached[0] == id(store) and cached[1] == (len(ctx), ctx.now):
        return cached[2]
    raw = store.neighbours.mean_of(nearest_customers(store, ctx))
    out = (np.log1p(SIMILAR_SCALE[0] * raw) / SIMILAR_SCALE[1]).astype(np.float32)
    ctx._similar = (id(store), (len(ctx), ctx.now), out)
    return out


def nearest_customers(store: FeatureStore, ctx: UserContext) -> np.ndarray:
    """Rows of the context's most similar customers (libs.features.neighbours.Neighbours.nearest), cached on the
    context like similar_customers_score: the feature and the explanation's facts read the same customers."""
    cached = getattr(ctx, "_nearest", None)
    if cached is not None and cached[0] == id(store) and cached[1] == (len(ctx), ctx.now):
        return cached[2]
    rows = store.neighbours.nearest(ctx.items, ctx.ts, ctx.now, ctx.user)
    ctx._nearest = (id(store), (len(ctx), ctx.now), rows)
    return rows


def pop_features_of(store: FeatureStore, cand_idx: np.ndarray, ctx: UserContext | None = None) -> np.ndarray:
    """[C, POP_FEATURES]: the candidates' rows of store.pop, plus (with `ctx`) the similar-customers column; all
    zero for products unknown to the store."""
    cand_idx = np.asarray(cand_idx, np.int64)
    known = cand_idx >= 0
    c = np.clip(cand_idx, 0, None)
    out = np.where(known[:, None], store.pop[c], 0.0).astype(np.float32)
    if ctx is not None:
        out[:, Pop.LOG_SIMILAR_CUSTOMERS_SCORE] = np.where(
            known, similar_customers_score(store, ctx)[np.clip(c, 0, store.n_items - 1)], 0.0
        )
    return out
