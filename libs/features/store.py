"""Feature assembly for the rankers: pure numpy, shared by training, offline evaluation and the services.

A `FeatureStore` is built once from purchases strictly before a reference time `now` (training: a cut-off;
serving: the end of the data) and the title embeddings; it holds each customer's time-ordered purchases, item
popularity and every item's co-purchase neighbours. At request time `user_context` merges the stored history with
fresh events (purchases recorded after the store was built), so the models read the newest history without
retraining. `transformer_inputs` / `gnn_inputs` then turn (context, candidates, optional query embedding) into the
exact tensors named in libs.model_io, batch axis = 1 scenario.

Feature scales are fixed (no fitted normalisers) so the same code gives the same numbers everywhere. Every evidence
type is maskable without retraining: a history position or graph neighbour by its mask (0), repeat-purchase and
popularity features by zeroing them (zero = "never bought" / "no popularity signal"), the query by query_mask = 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from libs.catalog.prepare import copurchase_matrix
from libs.features.neighbours import CustomerNeighbours
from libs.model_io import (
    EDGE_FEATURES,
    HIST_FEATURES,
    ITEM_NEIGHBOURS,
    MAX_HISTORY,
    POP_FEATURES,
    REPEAT_FEATURES,
    TEXT_DIM,
    USER_NEIGHBOURS,
)

DAY = 86400.0
HIST_FEATURE_NAMES = ("log_age_days", "log_newer_baskets", "in_last_basket", "log_item_count_in_history")
REPEAT_FEATURE_NAMES = ("bought_before", "log_count", "recency_14d", "recency_90d", "log_decayed_count_30d",
                        "in_last_basket", "log_age_over_user_gap",
                        # repurchase cycle: time since the last purchase of the candidate over its usual interval
                        "log_age_over_item_cycle", "due_by_item_cycle", "log_age_over_own_cycle", "due_by_own_cycle")
POP_FEATURE_NAMES = ("log_orders_7d", "log_orders_28d", "log_orders_all", "item_repeat_rate",
                     # season: orders in the same calendar window one year earlier (0 where the data lacks it)
                     "log_orders_year_ago_28d", "log_orders_year_ago_next_28d",
                     # per (customer, candidate): popularity among the customer's most similar customers
                     "log_similar_customers_score")
# (days, scale) of the log_orders_* columns: log1p(orders in the last `days` days, None = all time) / scale.
ORDER_WINDOWS = ((7, 5.0), (28, 6.0), (None, 8.0))
YEAR_DAYS = 365
SEASON_WINDOWS = ((-14, 14, 6.0), (0, 28, 6.0))  # days around now - 365 d, scale (as the 28-day column)
EDGE_FEATURE_NAMES = ("log_count", "recency_30d", "recency_180d", "share_of_user_purchases")
assert len(HIST_FEATURE_NAMES) == HIST_FEATURES and len(REPEAT_FEATURE_NAMES) == REPEAT_FEATURES
assert len(POP_FEATURE_NAMES) == POP_FEATURES and len(EDGE_FEATURE_NAMES) == EDGE_FEATURES


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


@dataclass
class FeatureStore:
    """Everything `*_inputs` needs, computed from purchases before `now` (seconds)."""

    now: float
    item_emb: np.ndarray  # [n_items, 384] float32 title embeddings
    pop: np.ndarray  # [n_items, POP_FEATURES] float32
    nbr_ids: np.ndarray  # [n_items, Kc] int64 item_idx + 1 (0 = none)
    nbr_weight: np.ndarray  # [n_items, Kc] float32 log1p(co-purchase count)
    copurchase: "sp.csr_matrix"  # [n_items, n_items] basket co-occurrence counts (libs.catalog.prepare)
    users: dict[str, UserContext] = field(default_factory=dict)
    item_index: pd.Index | None = None  # product_id -> item_idx, for fresh events given by product id
    item_cycle: np.ndarray | None = None  # [n_items] float64 usual repurchase interval in days; nan = unknown
    neighbours: CustomerNeighbours | None = None  # customers' decayed purchase vectors (similar customers)

    @property
    def n_items(self) -> int:
        return len(self.item_emb)

    @property
    def top_popular(self) -> np.ndarray:
        """Item indices by popularity (28 days, then all time), most popular first."""
        if getattr(self, "_top", None) is None:
            self._top = np.lexsort((np.arange(self.n_items), -self.pop[:, 2], -self.pop[:, 1]))
        return self._top

    @property
    def popularity_position(self) -> np.ndarray:
        """[n_items] each item's 0-based position in `top_popular`."""
        if getattr(self, "_position", None) is None:
            self._position = np.empty(self.n_items, np.int64)
            self._position[self.top_popular] = np.arange(self.n_items)
        return self._position

    # ------------------------------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        purchases: pd.DataFrame,
        item_emb: np.ndarray,
        now: pd.Timestamp | float,
        guest_sales: pd.DataFrame | None = None,
        product_ids: Sequence[str] | None = None,
    ) -> "FeatureStore":
        """From purchase rows (user_id, item_idx, invoice_no, ts); rows at or after `now` are ignored."""
        now_s = float(to_seconds(now) if isinstance(now, pd.Timestamp) else now)
        n_items = len(item_emb)
        cols = ["user_id", "item_idx", "invoice_no", "ts"]
        p = purchases[cols]
        p = p[to_seconds(p["ts"]) < now_s]
        sales = p if guest_sales is None or guest_sales.empty else pd.concat([p, guest_sales[cols]])
        sales = sales[to_seconds(sales["ts"]) < now_s]
        pop = popularity_features(sales["item_idx"].to_numpy(), to_seconds(sales["ts"]),
                                  sales["invoice_no"].to_numpy(), now_s, n_items)
        pop[:, 3] = item_repeat_rate(p["user_id"].to_numpy(), p["item_idx"].to_numpy(), n_items)
        sales_ts = to_seconds(sales["ts"])
        data_start = float(np.min(sales_ts)) if len(sales_ts) else now_s
        pop[:, 4:6] = season_features(sales["item_idx"].to_numpy(), sales_ts, now_s, n_items, data_start)
        cycle = item_repurchase_cycle(p["user_id"].to_numpy(), p["item_idx"].to_numpy(), to_seconds(p["ts"]),
                                      n_items)
        copurchase = copurchase_matrix(sales, n_items)
        nbr_ids, nbr_weight = copurchase_neighbours(copurchase, ITEM_NEIGHBOURS)
        users = group_users(p, now_s)
        index = pd.Index(product_ids) if product_ids is not None else None
        neighbours = CustomerNeighbours.build({u: (c.items, c.ts) for u, c in users.items()}, n_items, now_s)
        return cls(now_s, np.ascontiguousarray(item_emb, dtype=np.float32), pop, nbr_ids, nbr_weight, copurchase,
                   users, index, cycle, neighbours)

    # ------------------------------------------------------------------------------------------ request time
    def user_context(
        self,
        user_id: str | None,
        fresh: Iterable[tuple[str | int, pd.Timestamp | float]] = (),
        now: pd.Timestamp | float | None = None,
    ) -> UserContext:
        """The customer's stored history plus `fresh` purchases (product_id or item_idx, time), as of `now`.

        Unknown customers start empty (a brand-new customer with a few fresh purchases works). Fresh purchases
        with the same time form one basket. `now` defaults to max(store time, newest fresh event).
        """
        base = self.users.get(user_id) if user_id is not None else None
        fresh = list(fresh)
        items = [self._item(p) for p, _ in fresh]
        ts = np.array([float(to_seconds(t) if isinstance(t, pd.Timestamp) else t) for _, t in fresh], np.float64)
        now_s = float(to_seconds(now) if isinstance(now, pd.Timestamp) else now) if now is not None else \
            max([self.now, *(ts + 1.0)])
        if base is None:
            base = UserContext.empty(now_s)
        if not fresh:
            return UserContext(base.items, base.ts, base.baskets, now_s, user_id)
        order = np.argsort(ts, kind="stable")
        f_items = np.asarray(items, np.int64)[order]
        f_ts = ts[order]
        _, f_basket = np.unique(f_ts, return_inverse=True)
        start = (base.baskets.max() + 1) if len(base) else 0
        return UserContext(
            np.concatenate([base.items, f_items]),
            np.concatenate([base.ts, f_ts]),
            np.concatenate([base.baskets, f_basket.astype(np.int64) + start]),
            now_s,
            user_id,
        )

    def _item(self, product: str | int) -> int:
        if isinstance(product, (int, np.integer)):
            return int(product)
        if self.item_index is None:
            raise KeyError("store built without product_ids: pass item_idx in fresh events")
        return int(self.item_index.get_loc(product))

    # ------------------------------------------------------------------------------------------ candidates
    def candidate_embeddings(self, cand_idx: np.ndarray, new_emb: np.ndarray | None = None) -> np.ndarray:
        """[C, 384] title embeddings; rows with cand_idx < 0 (products unknown to the store) come from new_emb."""
        cand_idx = np.asarray(cand_idx, np.int64)
        emb = self.item_emb[np.clip(cand_idx, 0, None)]
        unknown = cand_idx < 0
        if unknown.any():
            if new_emb is None:
                raise ValueError("candidates with item_idx < 0 need their title embeddings in new_emb")
            emb = emb.copy()
            emb[unknown] = np.asarray(new_emb, np.float32)[unknown]
        return emb


# ---------------------------------------------------------------------------------------------- store pieces
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
        change = np.r_[0, np.cumsum(inv[a + 1:b] != inv[a:b - 1])]
        out[users[a]] = UserContext(items[a:b], ts[a:b], change.astype(np.int64), now_s, users[a])
    return out


def popularity_features(items: np.ndarray, ts: np.ndarray, invoices: np.ndarray, now_s: float, n_items: int
                        ) -> np.ndarray:
    """[n_items, POP_FEATURES]: log1p(orders in the last 7 / 28 days, all time) scaled to about [0, 1]; the
    other columns (item repeat rate, season) are filled by FeatureStore.build."""
    out = np.zeros((n_items, POP_FEATURES), np.float32)
    for j, (days, scale) in enumerate(ORDER_WINDOWS):
        keep = np.ones(len(items), bool) if days is None else ts >= now_s - days * DAY
        out[:, j] = np.log1p(np.bincount(items[keep], minlength=n_items)[:n_items]) / scale
    return out


def orders_in_window(pop: np.ndarray, days: int | None) -> np.ndarray:
    """[...] int64 orders in the last `days` days (None: all time) read back from popularity feature rows [..., F]:
    the count the models read, exact (log1p of counts far below float32's 2^24)."""
    j, (_, scale) = next((j, w) for j, w in enumerate(ORDER_WINDOWS) if w[0] == days)
    return np.rint(np.expm1(pop[..., j].astype(np.float64) * scale)).astype(np.int64)


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


def season_features(items: np.ndarray, ts: np.ndarray, now_s: float, n_items: int, data_start_s: float
                    ) -> np.ndarray:
    """[n_items, 2] year-over-year season: log1p(orders in [now - 365 d + a, now - 365 d + b)) / scale for each
    (a, b, scale) of SEASON_WINDOWS (the 4 weeks around this date last year; the 4 weeks after it). Only sales
    before `now` count (every window ends at least 337 days before it). A window that starts before the data does
    (the day of `data_start_s`) is 0 = "no season signal": a partly covered window would understate it."""
    out = np.zeros((n_items, len(SEASON_WINDOWS)), np.float32)
    items, ts = np.asarray(items, np.int64), np.asarray(ts, np.float64)
    first_day = np.floor(data_start_s / DAY) * DAY
    anchor = now_s - YEAR_DAYS * DAY
    for j, (a, b, scale) in enumerate(SEASON_WINDOWS):
        lo, hi = anchor + a * DAY, min(anchor + b * DAY, now_s)
        if lo < first_day:
            continue
        keep = (ts >= lo) & (ts < hi)
        out[:, j] = np.log1p(np.bincount(items[keep], minlength=n_items)[:n_items]) / scale
    return out


def item_repurchase_cycle(users: np.ndarray, items: np.ndarray, ts: np.ndarray, n_items: int) -> np.ndarray:
    """[n_items] float64: each item's usual repurchase interval in days = the median gap between consecutive
    purchases of it by the same customer, pooled over every customer who bought it at two or more distinct times
    (at least 1 day); nan where nobody did. Callers pass purchases before their `now` only."""
    out = np.full(n_items, np.nan)
    if len(items) < 2:
        return out
    df = pd.DataFrame({"u": np.asarray(users).astype(str), "i": np.asarray(items, np.int64),
                       "t": np.asarray(ts, np.float64)}).drop_duplicates().sort_values(["u", "i", "t"], kind="stable")
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


def copurchase_neighbours(co: "sp.csr_matrix", k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each item's k most co-purchased items (item-basket-item paths): ids + 1 and log1p(count)."""
    n_items = co.shape[0]
    ids = np.zeros((n_items, k), np.int64)
    weight = np.zeros((n_items, k), np.float32)
    for i in range(n_items):
        a, b = co.indptr[i], co.indptr[i + 1]
        if a == b:
            continue
        cols, vals = co.indices[a:b], co.data[a:b]
        top = np.argsort(-vals, kind="stable")[:k]
        ids[i, :len(top)] = cols[top] + 1
        weight[i, :len(top)] = np.log1p(vals[top])
    return ids, weight


# ---------------------------------------------------------------------------------------------- per-user features
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
    first_ts = np.full(size, np.inf)
    np.minimum.at(first_ts, ctx.items, ctx.ts)
    last_ts = np.full(size, -np.inf)
    np.maximum.at(last_ts, ctx.items, ctx.ts)
    span = np.where(count >= 2, last_ts - first_ts, 0.0) / DAY
    own = np.where(span > 0, np.maximum(span / np.maximum(count - 1, 1.0), 1.0), np.nan)
    out[:, 9], out[:, 10] = cycle_features(age_c, own[c])
    return out


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


# ---------------------------------------------------------------------------------------------- model inputs
def query_inputs(query_emb: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if query_emb is None:
        return np.zeros((1, TEXT_DIM), np.float32), np.zeros((1, 1), np.float32)
    return np.asarray(query_emb, np.float32).reshape(1, TEXT_DIM), np.ones((1, 1), np.float32)


def cand_ids(cand_idx: np.ndarray) -> np.ndarray:
    cand_idx = np.asarray(cand_idx, np.int64)
    return np.where(cand_idx >= 0, cand_idx + 1, 0)[None]


SIMILAR_SCALE = (200.0, 3.0)  # log1p(200 x score) / 3: about 0.3 at the median positive, 1 at the 99th percentile


def similar_customers_score(store: FeatureStore, ctx: UserContext) -> np.ndarray:
    """[n_items] float32 log1p(200 x mean of the k most similar customers' vectors) / 3 (libs.features.neighbours),
    for the context as given (fresh events included); cached on a stored context (training reuses them)."""
    if store.neighbours is None or len(ctx) == 0:
        return np.zeros(store.n_items, np.float32)
    cached = getattr(ctx, "_similar", None)
    if cached is not None and cached[0] == id(store) and cached[1] == (len(ctx), ctx.now):
        return cached[2]
    raw = store.neighbours.scores(ctx.items, ctx.ts, ctx.now, ctx.user)
    out = (np.log1p(SIMILAR_SCALE[0] * raw) / SIMILAR_SCALE[1]).astype(np.float32)
    ctx._similar = (id(store), (len(ctx), ctx.now), out)
    return out


def pop_features_of(store: FeatureStore, cand_idx: np.ndarray, ctx: UserContext | None = None) -> np.ndarray:
    """[C, POP_FEATURES]: the candidates' rows of store.pop, plus (with `ctx`) the similar-customers column; all
    zero for products unknown to the store."""
    cand_idx = np.asarray(cand_idx, np.int64)
    known = cand_idx >= 0
    c = np.clip(cand_idx, 0, None)
    out = np.where(known[:, None], store.pop[c], 0.0).astype(np.float32)
    if ctx is not None:
        col = POP_FEATURE_NAMES.index("log_similar_customers_score")
        out[:, col] = np.where(known, similar_customers_score(store, ctx)[np.clip(c, 0, store.n_items - 1)], 0.0)
    return out


def stack(batches: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate single-scenario input dicts along the batch axis (same candidate count required)."""
    return {k: np.concatenate([b[k] for b in batches], axis=0) for k in batches[0]}


# ---------------------------------------------------------------------------------------------- candidate pool
POOL_HISTORY, POOL_CO_PURCHASE, POOL_SIMILAR, POOL_POPULAR = "history", "co_purchase", "similar_customers", "popular"
POOL_N_POPULAR, POOL_RECENT_ITEMS, POOL_MAX_HISTORY, POOL_N_SIMILAR = 100, 10, 200, 100
POOL_MAX = POOL_MAX_HISTORY + POOL_RECENT_ITEMS * ITEM_NEIGHBOURS + POOL_N_SIMILAR + POOL_N_POPULAR  # the largest pool


def candidate_parts(store: FeatureStore, ctx: UserContext, n_popular: int = POOL_N_POPULAR,
                    recent_items: int = POOL_RECENT_ITEMS, max_history: int = POOL_MAX_HISTORY
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


def candidate_pool(store: FeatureStore, ctx: UserContext, n_popular: int = POOL_N_POPULAR,
                   recent_items: int = POOL_RECENT_ITEMS, max_history: int = POOL_MAX_HISTORY) -> np.ndarray:
    """Items worth ranking for a user when no query selects candidates: the union of `candidate_parts`, at most
    POOL_MAX items. One definition for training (the rankers learn on exactly this distribution), offline
    evaluation and the served Recommend (retrieval's user candidates), so the gateway ranks what `make eval`
    measured."""
    parts = candidate_parts(store, ctx, n_popular, recent_items, max_history)
    return pd.unique(np.concatenate([items for _, items in parts]).astype(np.int64))
