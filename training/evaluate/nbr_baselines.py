"""Next-basket-recommendation baselines: the simple methods the literature found hard to beat.

- tifu_knn: TIFU-KNN (Hu, He, Guo, Rao & Huang, "Modeling Personalized Item Frequency Information for Next-basket
  Recommendation", SIGIR 2020), following the authors' code (github.com/HaojiHu/TIFUKNN, `temporal_decay_sum_history`,
  `group_history_list`, `KNN`, `merge_history`).
- gp_topfreq: GP-TopFreq (Li, Jaber, Hu, Ariannezhad, de Rijke & Kanoulas, "A Next Basket Recommendation Reality
  Check", TOIS 2023): the customer's most frequent items, ties and fill-up by recent (30-day) popularity.
- repeat_explore: a repeat-then-explore slot mix (see RepeatExplore).

Baskets are invoices. Every method scores the whole catalogue; equal scores are ordered by recent popularity.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

from libs.features import UserContext, group_users, to_seconds
from libs.features.frequency import frequency_rank
from training.evaluate.baselines import ItemKNN, PersonalFrequency, lexicographic, recent_popularity, user_rows
from training.evaluate.metrics import ranking_order
from training.evaluate.registry import register
from training.evaluate.split import TrainData

# Li et al. fill up with 30-day popularity (fixed, not tuned); the served prior reads the store's 28-day column.
GP_TOPFREQ_POPULARITY_DAYS = 30


# --------------------------------------------------------------------------------------------------------- TIFU-KNN


def basket_weights(n_baskets: np.ndarray, position: np.ndarray, r_b: float, r_g: float, m: int) -> np.ndarray:
    """TIFU-KNN weight of each basket in its user's vector (the authors' code, vectorised).

    n_baskets: the user's number of baskets; position: the basket's index in time order (0 = oldest).
    - basket decay over the whole history: r_b ** (n - 1 - position) (the newest basket weighs 1);
    - the n baskets are cut, in time order, into m groups of near-equal size (the first m - n % m groups hold
      n // m baskets, the last n % m hold one more); with fewer than m baskets each basket is its own group;
    - a group is the mean of its baskets, decayed by r_g ** (m - 1 - group) (m, not the real number of groups, as in
      the authors' code: a short history is scaled down, so its neighbours weigh relatively more in the blend);
    - the user vector is the sum of the decayed groups divided by the real number of groups.
    """
    n = np.asarray(n_baskets, dtype=np.int64)
    i = np.asarray(position, dtype=np.int64)
    short = n < m
    base = np.maximum(n // m, 1)
    extra = np.where(short, 0, n % m)  # groups with one more basket (the newest ones)
    small_span = (m - extra) * base  # baskets in the groups of `base` baskets
    in_small = i < small_span
    group = np.where(short, i, np.where(in_small, i // base, (m - extra) + (i - small_span) // (base + 1)))
    group_len = np.where(short, 1, np.where(in_small, base, base + 1))
    real_groups = np.where(short, n, m)
    return (np.power(r_b, n - 1 - i) * np.power(r_g, m - 1 - group) / group_len / real_groups).astype(np.float64)


def basket_positions(purchases: pd.DataFrame) -> pd.DataFrame:
    """One row per purchase with its basket's time-order position in the user's history and the user's basket
    count. Baskets = invoices, ordered by time (then invoice number, for equal times)."""
    baskets = purchases[["user_id", "invoice_no", "ts"]].drop_duplicates(["user_id", "invoice_no"])
    baskets = baskets.sort_values(["user_id", "ts", "invoice_no"], kind="stable")
    baskets = baskets.assign(
        position=baskets.groupby("user_id").cumcount().to_numpy(),
        n_baskets=baskets.groupby("user_id")["invoice_no"].transform("size").to_numpy(),
    )
    return purchases[["user_id", "invoice_no", "item_idx"]].merge(
        baskets[["user_id", "invoice_no", "position", "n_baskets"]], on=["user_id", "invoice_no"], how="left"
    )


def user_vectors(
    purchases: pd.DataFrame, n_items: int, r_b: float, r_g: float, m: int
) -> tuple[pd.Index, sp.csr_matrix]:
    """(user ids, [n_users, n_items] TIFU-KNN user vectors): each basket is a binary item vector weighted by
    `basket_weights`, and the user vector is their sum."""
    rows = basket_positions(purchases)
    users, codes = np.unique(rows["user_id"].to_numpy(dtype=str), return_inverse=True)
    weights = basket_weights(rows["n_baskets"].to_numpy(), rows["position"].to_numpy(), r_b, r_g, m)
    matrix = sp.csr_matrix((weights, (codes, rows["item_idx"].to_numpy())), shape=(len(users), n_items))
    matrix.sum_duplicates()  # one invoice x product is one purchase already; this only merges storage
    return pd.Index(users), matrix


@lru_cache(maxsize=4)
def _cached_vectors(train: TrainData, r_b: float, r_g: float, m: int) -> tuple[pd.Index, sp.csr_matrix]:
    # TrainData hashes by identity and the cache holds it: the grid search refits the same split many times.
    return user_vectors(train.purchases, train.n_items, r_b, r_g, m)


@lru_cache(maxsize=8)
def _cached_neighbours(train: TrainData, r_b: float, r_g: float, m: int, k: int, metric: str) -> np.ndarray:
    _, vectors = _cached_vectors(train, r_b, r_g, m)
    return nearest_other_users(vectors, k, metric)


def nearest_other_users(vectors: sp.csr_matrix, k: int, metric: str = "euclidean") -> np.ndarray:
    """[n_users, k] indices of each user's k nearest OTHER users between user vectors, brute force (the authors'
    code uses Euclidean distance; cosine ignores the vectors' scale). The user itself is dropped (our users are
    both query and index)."""
    k = min(k, vectors.shape[0] - 1)
    if k <= 0:
        return np.zeros((vectors.shape[0], 0), dtype=np.int64)
    index = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", metric=metric).fit(vectors)
    found = index.kneighbors(vectors, return_distance=False)
    is_self = found == np.arange(vectors.shape[0])[:, None]
    # A user whose self is not among the k+1 (ties at distance 0) loses the farthest instead.
    is_self[~is_self.any(axis=1), -1] = True
    return found[~is_self].reshape(vectors.shape[0], k)


class TifuKNN:
    """TIFU-KNN: prediction = alpha * own vector + (1 - alpha) * mean of the k nearest customers' vectors.

    Neighbours are searched among every customer with purchases before the cut-off. Customers without history get
    zeros, i.e. the popularity order (equal scores are ordered by 28-day popularity).
    """

    def __init__(
        self,
        r_b: float = 0.9,
        r_g: float = 0.7,
        m: int = 7,
        k: int = 300,
        alpha: float = 0.7,
        metric: str = "euclidean",
    ):
        self.r_b, self.r_g, self.m, self.k, self.alpha, self.metric = r_b, r_g, m, k, alpha, metric

    def fit(self, train: TrainData) -> None:
        self.train = train
        self.popularity = recent_popularity(train)
        self.user_index, self.vectors = _cached_vectors(train, self.r_b, self.r_g, self.m)
        self.neighbours = _cached_neighbours(train, self.r_b, self.r_g, self.m, self.k, self.metric)

    def predict(self, user_ids: Sequence[str]) -> np.ndarray:
        rows = self.user_index.get_indexer(pd.Index(np.asarray(user_ids, dtype=object)))
        known = np.flatnonzero(rows >= 0)
        out = np.zeros((len(user_ids), self.train.n_items), dtype=np.float64)
        if len(known) == 0:
            return out
        neighbours = self.neighbours[rows[known]]
        k = neighbours.shape[1]
        if k:  # mean of neighbour vectors as one sparse product
            averaging = sp.csr_matrix(
                (np.full(neighbours.size, 1.0 / k), (np.repeat(np.arange(len(known)), k), neighbours.ravel())),
                shape=(len(known), self.vectors.shape[0]),
            )
            out[known] = (1.0 - self.alpha) * (averaging @ self.vectors).toarray()
        out[known] += self.alpha * self.vectors[rows[known]].toarray()
        return out

    def score(self, user_ids: Sequence[str]) -> np.ndarray:
        return lexicographic(self.predict(user_ids), self.popularity)


# ------------------------------------------------------------------------------------------------------ GP-TopFreq


class GPTopFreq:
    """GP-TopFreq as the served prior computes it (libs.features.frequency.frequency_rank): the customer's orders
    per item, ties and fill-up by popularity over the last `popularity_days` (orders, guests included; all-time
    orders below that)."""

    def __init__(self, popularity_days: int = GP_TOPFREQ_POPULARITY_DAYS):
        self.popularity_days = popularity_days

    def fit(self, train: TrainData) -> None:
        self.n_items = train.n_items
        self.now = to_seconds(train.cutoff)
        self.users = group_users(train.purchases, self.now)
        self.position = np.empty(self.n_items, np.int64)
        self.position[ranking_order(recent_popularity(train, self.popularity_days)[None, :])[0]] = np.arange(
            self.n_items
        )

    def score(self, user_ids: Sequence[str]) -> np.ndarray:
        every, empty = np.arange(self.n_items), UserContext.empty(self.now)
        ranks = [frequency_rank(self.position, self.users.get(str(u), empty), every) for u in user_ids]
        return (self.n_items - np.stack(ranks)).astype(np.float32) if ranks else np.zeros((0, self.n_items), np.float32)


# -------------------------------------------------------------------------------------------------- repeat/explore


def rank_within(scores: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Per row, the 0-based rank of each eligible item among the row's eligible items by descending score (ties
    by item index); ineligible items get a rank >= the number of eligible ones."""
    keyed = np.where(eligible, scores, -np.inf)
    order = np.argsort(-keyed, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(scores.shape[1]), scores.shape), axis=1)
    return ranks


def repeat_explore_order(
    repeat: np.ndarray, explore: np.ndarray, bought: np.ndarray, n_explore: int, k: int = 20
) -> np.ndarray:
    """Slot keys (lower = better, strict per row) of the repeat-then-explore list.

    The first k - n_explore slots go to the bought items by `repeat` score (fewer if the customer has fewer), the
    next n_explore slots to never-bought items by `explore` score, then the remaining bought items, then the
    remaining never-bought items.
    """
    bought = bought.astype(bool)
    r = rank_within(repeat, bought)
    e = rank_within(explore, ~bought)
    n_rep = bought.sum(axis=1, keepdims=True)
    head = min(k - n_explore, k)
    first = np.minimum(head, n_rep)  # repeat slots actually filled at the top
    key = np.where(
        bought,
        np.where(r < head, r, head + n_explore + (r - head)),
        np.where(e < n_explore, first + e, first + n_explore + np.maximum(n_rep - head, 0) + (e - n_explore)),
    )
    return key


class RepeatExplore:
    """Repeat-then-explore: a fixed number of the 20 slots go to products the customer never bought.

    Repeat score: time-decayed personal frequency (0.5 ** (age / half_life) per purchase). Explore score: item-kNN
    co-purchase similarity to the customer's history (`itemknn`, 100 neighbours) or recent popularity, with
    popularity breaking ties. n_explore, half_life and the explore source are chosen on the validation split.
    This is the repetition/exploration decomposition studied by Li et al. (TOIS 2023), in the spirit of ReCANet
    (Ariannezhad et al., SIGIR 2022: repeat items first, from a dedicated repeat model) without ReCANet's neural
    repeat model or per-item repurchase-cycle features.
    """

    def __init__(self, n_explore: int = 4, half_life_days: float = 120.0, explore: str = "itemknn"):
        if explore not in ("itemknn", "popularity"):
            raise ValueError(f"explore must be 'itemknn' or 'popularity', got {explore!r}")
        self.n_explore, self.half_life_days, self.explore = n_explore, half_life_days, explore

    def fit(self, train: TrainData) -> None:
        self.train = train
        self.popularity = recent_popularity(train)
        self.repeat_model = PersonalFrequency(half_life_days=self.half_life_days)
        self.repeat_model.fit(train)
        self.knn = _cached_itemknn(train) if self.explore == "itemknn" else None

    def score(self, user_ids: Sequence[str]) -> np.ndarray:
        repeat = self.repeat_model.personal(user_ids)
        mine, _ = user_rows(self.train, user_ids)
        bought = np.zeros(repeat.shape, dtype=bool)
        bought[mine["row"].to_numpy(), mine["item_idx"].to_numpy()] = True
        # Rank scores (n_items .. 1) of each source, popularity breaking its ties.
        repeat_rank = lexicographic(repeat, self.popularity)
        if self.knn is None:
            explore_rank = lexicographic(np.zeros_like(repeat), self.popularity)
        else:
            explore_rank = self.knn.score(user_ids)
        key = repeat_explore_order(repeat_rank, explore_rank, bought, self.n_explore)
        return (repeat.shape[1] - key).astype(np.float32)


@lru_cache(maxsize=2)
def _cached_itemknn(train: TrainData) -> ItemKNN:
    model = ItemKNN(neighbours=100)
    model.fit(train)
    return model


register(
    "tifu_knn",
    TifuKNN,
    grid={"r_b": [0.9, 1.0], "r_g": [0.6, 1.0], "m": [1, 3, 7], "k": [100, 300], "alpha": [0.7, 0.9, 1.0]},
    description="TIFU-KNN (Hu et al. SIGIR 2020): basket- and group-decayed item frequency + k nearest customers",
    group="baseline",
)
register(
    "gp_topfreq",
    GPTopFreq,
    description="GP-TopFreq (Li et al. TOIS 2023): personal invoice frequency, ties/fill-up by 30-day popularity",
    group="baseline",
)
register(
    "repeat_explore",
    RepeatExplore,
    grid={"n_explore": [0, 2, 5, 10], "half_life_days": [60, 240], "explore": ["itemknn", "popularity"]},
    description="decayed-frequency repeat slots, then n_explore never-bought items (item-kNN or popularity)",
    group="baseline",
)
