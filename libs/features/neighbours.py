"""Similar customers, TIFU-KNN style (Hu et al., SIGIR 2020), simplified to time decay: each customer is the
L2-normalised vector of their purchases weighted 0.5^(age / half-life); a customer's neighbours are the k other
customers with the highest cosine similarity; a product's score is the mean of the neighbours' vectors at it
(TIFU-KNN's neighbour term). Built from the feature store's purchases before its `now` only; a request's context
(stored history plus fresh events) is projected onto them at request time, so fresh purchases count at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

HALF_LIFE_DAYS = 90.0
K_NEIGHBOURS = 100
DAY = 86400.0


def decayed_vector(
    items: np.ndarray, ts: np.ndarray, now_s: float, half_life_days: float = HALF_LIFE_DAYS
) -> tuple[np.ndarray, np.ndarray]:
    """(distinct item indices, L2-normalised weights): sum over the purchases of each item of
    0.5^(age_days / half_life_days) (purchases after `now_s` count as age 0)."""
    items = np.asarray(items, np.int64)
    if len(items) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    age = np.maximum(now_s - np.asarray(ts, np.float64), 0.0) / DAY
    uniq, inv = np.unique(items, return_inverse=True)
    w = np.bincount(inv, weights=np.power(0.5, age / half_life_days))
    return uniq, w / np.linalg.norm(w)


@dataclass
class CustomerNeighbours:
    """Every customer's normalised decayed purchase vector at `now` (rows in `users` order)."""

    users: dict[str, int]  # user_id -> row
    by_user: sp.csr_matrix  # [n_users, n_items]
    by_item: sp.csc_matrix  # the same matrix, column access
    now: float
    k: int = K_NEIGHBOURS

    @classmethod
    def build(
        cls,
        user_items: dict[str, tuple[np.ndarray, np.ndarray]],
        n_items: int,
        now_s: float,
        k: int = K_NEIGHBOURS,
        half_life_days: float = HALF_LIFE_DAYS,
    ) -> "CustomerNeighbours":
        """From user_id -> (items, ts) of purchases before `now_s`."""
        rows, cols, vals, users = [], [], [], {}
        for r, (user, (items, ts)) in enumerate(user_items.items()):
            idx, w = decayed_vector(items, ts, now_s, half_life_days)
            users[user] = r
            rows.append(np.full(len(idx), r, np.int64))
            cols.append(idx)
            vals.append(w)
        n = len(users)
        if n:
            m = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n_items))
        else:
            m = sp.csr_matrix((0, n_items))
        return cls(users, m, m.tocsc(), float(now_s), k)

    def scores(
        self,
        items: np.ndarray,
        ts: np.ndarray,
        now_s: float,
        user_id: str | None = None,
        half_life_days: float = HALF_LIFE_DAYS,
    ) -> np.ndarray:
        """[n_items] float32: mean of the k most similar other customers' vectors (similarity > 0 only; fewer
        than k such customers: the mean over k all the same, so a thin neighbourhood scores low). The customer's
        own row (`user_id`) is never a neighbour."""
        return self.mean_of(self.nearest(items, ts, now_s, user_id, half_life_days))

    def mean_of(self, top: np.ndarray) -> np.ndarray:
        """[n_items] float32: the rows' vectors summed over k (see scores)."""
        if len(top) == 0:
            return np.zeros(self.by_user.shape[1], np.float32)
        return (np.asarray(self.by_user[top].sum(axis=0)).ravel() / self.k).astype(np.float32)

    def nearest(
        self,
        items: np.ndarray,
        ts: np.ndarray,
        now_s: float,
        user_id: str | None = None,
        half_life_days: float = HALF_LIFE_DAYS,
    ) -> np.ndarray:
        """Rows of the (at most k) most similar other customers with similarity > 0."""
        idx, w = decayed_vector(items, ts, now_s, half_life_days)
        if len(idx) == 0 or self.by_user.shape[0] == 0:
            return np.zeros(0, np.int64)
        sims = np.asarray(self.by_item[:, idx] @ w).ravel()
        own = self.users.get(user_id) if user_id is not None else None
        if own is not None:
            sims[own] = 0.0
        k = min(self.k, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        return top[sims[top] > 0]

    @property
    def user_ids(self) -> list[str]:
        """Customer id of each row."""
        if getattr(self, "_ids", None) is None:
            self._ids = sorted(self.users, key=self.users.__getitem__)
        return self._ids
