"""The `FeatureStore`: built once from purchases strictly before a reference time `now` (training: a cut-off;
serving: the end of the data) and the title embeddings, it holds each customer's time-ordered purchases, item
popularity (libs.features.popularity) and every item's co-purchase neighbours. At request time `user_context`
merges the stored history with fresh events (purchases recorded after the store was built), so the models read the
newest history without retraining; each ranker's input builder (libs/rankers/) turns (context, candidates, optional
query embedding) into the exact tensors named in libs.model_io.

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
from libs.features.popularity import Pop, item_repeat_rate, popularity_features, popularity_order, season_features
from libs.features.user import UserContext, group_users, item_repurchase_cycle, to_seconds
from libs.model_io import ITEM_NEIGHBOURS


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
            self._top = popularity_order(self.pop[:, Pop.LOG_ORDERS_28D], self.pop[:, Pop.LOG_ORDERS_ALL])
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
        sales_ts = to_seconds(sales["ts"])
        pop = popularity_features(sales["item_idx"].to_numpy(), sales_ts, now_s, n_items)
        pop[:, Pop.ITEM_REPEAT_RATE] = item_repeat_rate(p["user_id"].to_numpy(), p["item_idx"].to_numpy(), n_items)
        data_start = float(np.min(sales_ts)) if len(sales_ts) else now_s
        pop[:, [Pop.LOG_ORDERS_YEAR_AGO_28D, Pop.LOG_ORDERS_YEAR_AGO_NEXT_28D]] = season_features(
            sales["item_idx"].to_numpy(), sales_ts, now_s, n_items, data_start
        )
        cycle = item_repurchase_cycle(p["user_id"].to_numpy(), p["item_idx"].to_numpy(), to_seconds(p["ts"]), n_items)
        copurchase = copurchase_matrix(sales, n_items)
        nbr_ids, nbr_weight = copurchase_neighbours(copurchase, ITEM_NEIGHBOURS)
        users = group_users(p, now_s)
        index = pd.Index(product_ids) if product_ids is not None else None
        neighbours = CustomerNeighbours.build({u: (c.items, c.ts) for u, c in users.items()}, n_items, now_s)
        return cls(
            now_s,
            np.ascontiguousarray(item_emb, dtype=np.float32),
            pop,
            nbr_ids,
            nbr_weight,
            copurchase,
            users,
            index,
            cycle,
            neighbours,
        )

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
        now_s = (
            float(to_seconds(now) if isinstance(now, pd.Timestamp) else now)
            if now is not None
            else max([self.now, *(ts + 1.0)])
        )
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
        ids[i, : len(top)] = cols[top] + 1
        weight[i, : len(top)] = np.log1p(vals[top])
    return ids, weight
