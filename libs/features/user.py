"""Per-customer features: a customer's purchases as of a time (`UserContext`), and what the rankers read from them:
history positions, repeat-purchase features of each candidate (with repurchase cycles), and the customer's item
neighbours (the GNN's user side). Every feature is maskable: zero = "never bought" / no signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from libs.features.popularity import DAY
from libs.model_io import EDGE_FEATURES, HIST_FEATURES, MAX_HISTORY, REPEAT_FEATURES, USER_NEIGHBOURS

HIST_FEATURE_NAMES = ("log_age_days", "log_newer_baskets", "in_last_basket", "log_item_count_in_history")
REPEAT_FEATURE_NAMES = (
    "bought_before",
    "log_count",
    "recency_14d",
    "recency_90d",
    "log_decayed_count_30d",
    "in_last_basket",
    "log_age_over_user_gap",
    # repurchase cycle: time since the last purchase of the candidate over its usual interval
    "log_age_over_item_cycle",
    "due_by_item_cycle",
    "log_age_over_own_cycle",
    "due_by_own_cycle",
)
EDGE_FEATURE_NAMES = ("log_count", "recency_30d", "recency_180d", "share_of_user_purchases")
assert len(HIST_FEATURE_NAMES) == HIST_FEATURES and len(REPEAT_FEATURE_NAMES) == REPEAT_FEATURES
assert len(EDGE_FEATURE_NAMES) == EDGE_FEATURES


def to_seconds(ts: pd.Series | pd.DatetimeIndex | np.ndarray | pd.Timestamp) -> np.ndarray | float:
    """Timestamps as float seconds since the epoch (naive timestamps are taken as they are)."""
    if isinstance(ts, pd.Timestamp):
        return ts.value / 1e9
    values = pd.to_datetime(pd.Series(ts) if not isinstance(ts, pd.Series) else ts)
    return values.to_numpy().astype("datetime64[ns]").astype(np.int64) / 1e9


@dataclass
class UserContext:
    """One customer's purchases oldest first (item_idx, time in seconds, basket id) as seen at time `now`."""

    items: np.ndarray  # int64 item_idx
    ts: np.ndarray  # float64 seconds
    baskets: np.ndarray  # int64, equal for lines of one invoice, increasing with time
    now: float
    user: str | None = None  # customer id (None: anonymous); never their own similar customer

    @staticmethod
    def empty(now: float) -> "UserContext":
        return UserContext(np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.int64), float(now))

    def __len__(self) -> int:
        return len(self.items)


def group_users(purchases: pd.DataFrame, now_s: float) -> dict[str, UserContext]:
    """user_id -> UserContext (oldest first; baskets numbered per user by invoice order)."""
    if purchases.empty:
        return {}
    p = purchases.assign(_t=to_seconds(purchases["ts"])).sort_values(["user_id", "_t", "invoice_no"], kind="stable")
    users = p["user_id"].astype(str).to_numpy()
    items = p["item_idx"].to_numpy(np.int64)
    ts = p["_t"].to_numpy(np.float64)
    inv = pd.factorize(p["invoice_no"])[0]
    bounds = np.flatnonzero(np.r_[True, users[1:] != users[:-1], True])
    out: dict[str, UserContext] = {}
    for a, b in zip(bounds[:-1], bounds[1:]):
        change = np.r_[0, np.cumsum(inv[a + 1 : b] != inv[a : b - 1])]
        out[users[a]] = UserContext(items[a:b], ts[a:b], change.astype(np.int64), now_s, users[a])
    return out


def item_repurchase_cycle(users: np.ndarray, items: np.ndarray, ts: np.ndarray, n_items: int) -> np.ndarray:
    """[n_items] float64: each item's usual repurchase interval in days = the median gap between consecutive
    purchases of it by the same customer, pooled over every customer who bought it at two or more distinct times
    (at least 1 day); nan where nobody did. Callers pass purchases before their `now` only."""
    out = np.full(n_items, np.nan)
    if len(items) < 2:
        return out
    df = (
        pd.DataFrame(
            {"u": np.asarray(users).astype(str), "i": np.asarray(items, np.int64), "t": np.asarray(ts, np.float64)}
        )
        .drop_duplicates()
        .sort_values(["u", "i", "t"], kind="stable")
    )
    u, i, t = df["u"].to_numpy(), df["i"].to_numpy(), df["t"].to_numpy()
    same = (u[1:] == u[:-1]) & (i[1:] == i[:-1])
    if not same.any():
        return out
    gaps = pd.Series(np.diff(t)[same] / DAY).groupby(i[1:][same]).median()
    out[gaps.index.to_numpy()] = np.maximum(gaps.to_numpy(), 1.0)
    return out


def cycle_features(age_days: np.ndarray, cycle_days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log1p(age / cycle) / 3, exp(-ln(age / cycle)^2 / 2)): how far into its repurchase cycle a product is, and
    how "due" it is (1 when the time since the last purchase equals the cycle, 0.61 at half or twice it); both 0
    where the cycle is unknown (nan) or the product was never bought (age inf)."""
    age = np.asarray(age_days, np.float64)
    cycle = np.asarray(cycle_days, np.float64)
    ok = np.isfinite(age) & np.isfinite(cycle) & (cycle > 0)
    ratio = np.where(ok, age / np.where(ok, cycle, 1.0), 1.0)
    log_age = np.where(ok, np.log1p(ratio) / 3.0, 0.0)
    due = np.where(ok, np.exp(-0.5 * np.log(np.maximum(ratio, 1e-3)) ** 2), 0.0)
    return log_age, due


def history_features(ctx: UserContext, max_len: int = MAX_HISTORY) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hist_ids [L] int64, hist_feats [L, 4] float32, hist_mask [L] float32): the newest `max_len` purchases,
    oldest first, left-padded."""
    ids = np.zeros(max_len, np.int64)
    feats = np.zeros((max_len, HIST_FEATURES), np.float32)
    mask = np.zeros(max_len, np.float32)
    n = min(len(ctx), max_len)
    if n == 0:
        return ids, feats, mask
    items, ts, baskets = ctx.items[-n:], ctx.ts[-n:], ctx.baskets[-n:]
    last_basket = ctx.baskets[-1]
    # Distinct baskets newer than each position, over the whole history.
    uniq = np.unique(ctx.baskets)
    newer = len(uniq) - 1 - np.searchsorted(uniq, baskets)
    counts = np.bincount(ctx.items, minlength=int(items.max()) + 1)[items]
    ids[-n:] = items + 1
    feats[-n:, 0] = np.log1p(np.maximum(ctx.now - ts, 0.0) / DAY) / 6.0
    feats[-n:, 1] = np.log1p(newer) / 4.0
    feats[-n:, 2] = (baskets == last_basket).astype(np.float32)
    feats[-n:, 3] = np.log1p(counts) / 3.0
    mask[-n:] = 1.0
    return ids, feats, mask


def repeat_features(ctx: UserContext, cand_idx: np.ndarray, item_cycle: np.ndarray | None = None) -> np.ndarray:
    """[C, REPEAT_FEATURES] float32 re-purchase signals of the user for each candidate (all zero = never bought /
    unknown). `item_cycle` ([n_items] days, FeatureStore.item_cycle): each item's usual repurchase interval; the
    user's own interval for a candidate is the mean gap between their first and last purchase of it."""
    cand_idx = np.asarray(cand_idx, np.int64)
    out = np.zeros((len(cand_idx), REPEAT_FEATURES), np.float32)
    if len(ctx) == 0:
        return out
    size = int(max(ctx.items.max(), cand_idx.max(initial=0))) + 1
    age = np.maximum(ctx.now - ctx.ts, 0.0) / DAY
    count = np.bincount(ctx.items, minlength=size).astype(np.float64)
    decayed = np.bincount(ctx.items, weights=np.power(0.5, age / 30.0), minlength=size)
    last_age = np.full(size, np.inf)
    np.minimum.at(last_age, ctx.items, age)
    valid = cand_idx >= 0
    c = np.where(valid, cand_idx, 0)
    bought = (count[c] > 0) & valid
    out[:, 0] = bought
    out[:, 1] = np.where(bought, np.log1p(count[c]) / 3.0, 0.0)
    out[:, 2] = np.where(bought, np.exp(-last_age[c] / 14.0), 0.0)
    out[:, 3] = np.where(bought, np.exp(-last_age[c] / 90.0), 0.0)
    out[:, 4] = np.where(bought, np.log1p(decayed[c]) / 2.0, 0.0)
    last = np.zeros(size, bool)
    last[ctx.items[ctx.baskets == ctx.baskets[-1]]] = True
    out[:, 5] = bought & last[c]
    # How "due" a re-purchase is: time since the candidate was last bought over the user's mean gap between baskets.
    basket_ts = np.unique(ctx.ts)
    gap = (basket_ts[-1] - basket_ts[0]) / DAY / (len(basket_ts) - 1) if len(basket_ts) > 1 else 30.0
    out[:, 6] = np.where(bought, np.log1p(last_age[c] / max(gap, 1.0)) / 3.0, 0.0)
    # Repurchase cycle: the item's usual interval (all customers, store data), then the user's own for it.
    age_c = np.where(bought, last_age[c], np.inf)
    if item_cycle is not None:
        known = valid & (cand_idx < len(item_cycle))
        cyc = np.where(known, np.asarray(item_cycle, np.float64)[np.clip(c, 0, len(item_cycle) - 1)], np.nan)
        out[:, 7], out[:, 8] = cycle_features(age_c, cyc)
    out[:, 9], out[:, 10] = cycle_features(age_c, _own_cycle(ctx, size, count)[c])
    return out


def _own_cycle(ctx: UserContext, size: int, count: np.ndarray) -> np.ndarray:
    """[size] the user's own repurchase interval per item in days: the span between their first and last purchase
    of it over (purchase rows - 1), at least 1; nan where not measurable (fewer than 2 rows, or one day only)."""
    first_ts = np.full(size, np.inf)
    np.minimum.at(first_ts, ctx.items, ctx.ts)
    last_ts = np.full(size, -np.inf)
    np.maximum.at(last_ts, ctx.items, ctx.ts)
    span = np.where(count >= 2, last_ts - first_ts, 0.0) / DAY
    return np.where(span > 0, np.maximum(span / np.maximum(count - 1, 1.0), 1.0), np.nan)


def own_cycle_days(ctx: UserContext, items: np.ndarray) -> np.ndarray:
    """The user's own repurchase interval of each of `items` in days, as repeat_features reads it (nan: none)."""
    items = np.asarray(items, np.int64)
    if len(ctx) == 0 or not len(items):
        return np.full(len(items), np.nan)
    size = int(max(ctx.items.max(), items.max())) + 1
    return _own_cycle(ctx, size, np.bincount(ctx.items, minlength=size).astype(np.float64))[items]


def user_neighbours(ctx: UserContext, k: int = USER_NEIGHBOURS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The user's k strongest item neighbours in the purchase graph (by 30-day-half-life decayed count):
    (ids [k] item_idx+1, edge feats [k, 4], mask [k])."""
    ids = np.zeros(k, np.int64)
    feats = np.zeros((k, EDGE_FEATURES), np.float32)
    mask = np.zeros(k, np.float32)
    if len(ctx) == 0:
        return ids, feats, mask
    age = np.maximum(ctx.now - ctx.ts, 0.0) / DAY
    uniq, inv = np.unique(ctx.items, return_inverse=True)
    count = np.bincount(inv).astype(np.float64)
    decayed = np.bincount(inv, weights=np.power(0.5, age / 30.0))
    last_age = np.full(len(uniq), np.inf)
    np.minimum.at(last_age, inv, age)
    order = np.lexsort((uniq, -count, -decayed))[:k]  # strongest first; ties by count, then item index
    n = len(order)
    ids[:n] = uniq[order] + 1
    feats[:n, 0] = np.log1p(count[order]) / 3.0
    feats[:n, 1] = np.exp(-last_age[order] / 30.0)
    feats[:n, 2] = np.exp(-last_age[order] / 180.0)
    feats[:n, 3] = count[order] / len(ctx)
    mask[:n] = 1.0
    return ids, feats, mask
