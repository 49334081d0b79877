"""The baselines every model must beat, each a few lines on top of numpy / scikit-learn / implicit.

All fit on a TrainData (strictly before the cut-off) and score the full catalogue. Ties: every personal baseline
orders equal personal scores (above all: the many items a user never bought) by recent popularity, explicitly, so
no ranking depends on item index order.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.metrics.pairwise import cosine_similarity
from threadpoolctl import threadpool_limits

from libs.features import popularity_order, to_seconds
from libs.features.popularity import order_lines
from training.evaluate.metrics import single_thread
from training.evaluate.registry import register
from training.evaluate.split import TrainData

SEED = 42
DEFAULT_POPULARITY_DAYS = 28


def recent_popularity(train: TrainData, window_days: int = DEFAULT_POPULARITY_DAYS) -> np.ndarray:
    """Per item, a score in the popularity order (libs.features.popularity_order: orders, guests included, in the
    last `window_days` before the cut-off, then all-time orders): n_items for the most popular item down to 1."""
    columns = ["item_idx", "ts"]
    sales = pd.concat([train.purchases[columns], train.guest_sales[columns]])
    items, ts, now = sales["item_idx"].to_numpy(), to_seconds(sales["ts"]), to_seconds(train.cutoff)
    order = popularity_order(
        order_lines(items, ts, now, train.n_items, window_days), order_lines(items, ts, now, train.n_items)
    )
    scores = np.empty(train.n_items, np.float64)
    scores[order] = np.arange(train.n_items, 0, -1)
    return scores


def lexicographic(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Scores that order each row by `primary`, then by `secondary` (a per-item vector) among equal primaries.

    Returned as strictly decreasing rank scores (n_items .. 1) in float32.
    """
    n_users, n_items = primary.shape
    second = np.broadcast_to(secondary, (n_users, n_items))
    order = np.lexsort((-second, -primary), axis=-1)
    out = np.empty((n_users, n_items), dtype=np.float32)
    np.put_along_axis(out, order, np.broadcast_to(np.arange(n_items, 0, -1, dtype=np.float32), out.shape), axis=1)
    return out


def user_rows(train: TrainData, user_ids: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Train purchases of `user_ids` with a `row` column = position in user_ids (unknown users have no rows)."""
    position = pd.Index(np.asarray(user_ids, dtype=object))
    rows = position.get_indexer(train.purchases["user_id"])
    mine = train.purchases[rows >= 0].assign(row=rows[rows >= 0])
    return mine, position


class Popularity:
    """Global popularity in a recent window: the same list for everyone."""

    def __init__(self, window_days: int = DEFAULT_POPULARITY_DAYS):
        self.window_days = window_days

    def fit(self, train: TrainData) -> None:
        self.scores = recent_popularity(train, self.window_days).astype(np.float32)

    def score(self, user_ids: Sequence[str]) -> np.ndarray:
        return np.tile(self.scores, (len(user_ids), 1))


class PersonalFrequency:
    """How many of the user's past invoices held the item; ties (incl. never bought) by recent popularity."""

    def __init__(self, half_life_days: float | None = None):
        self.half_life_days = half_life_days  # None = plain counts

    def fit(self, train: TrainData) -> None:
        self.train = train
        self.popularity = recent_popularity(train)

    def weights(self, ts: pd.Series) -> np.ndarray:
        if self.half_life_days is None:
            return np.ones(len(ts))
        age_days = (self.train.cutoff - ts).dt.total_seconds().to_numpy() / 86400.0
        return np.power(0.5, age_days / self.half_life_days)

    def personal(self, user_ids: Sequence[str]) -> np.ndarray:
        mine, _ = user_rows(self.train, user_ids)
        matrix = sp.csr_matrix(
            (self.weights(mine["ts"]), (mine["row"].to_numpy(), mine["item_idx"].to_numpy())),
            shape=(len(user_ids), self.train.n_items),
        )
        return matrix.toarray()  # duplicates summed: one entry per purchase (invoice x item)

    def score(self, user_ids: Sequence[str]) -> np.ndarray:
        return lexicographic(self.personal(user_ids), self.popularity)


class TimeDecayedFrequency(PersonalFrequency):
    """Personal frequency where a purchase `age` days before the cut-off weighs 0.5 ** (age / half_life)."""

    def __init__(self, half_life_days: float = 30.0):
        super().__init__(half_life_days=half_life_days)


class ItemKNN:
    """Item-item cosine similarity on the binary user x item purchase matrix (train), each item keeping its
    `neighbours` most similar items; a user's score for an item = sum of its similarities to the user's past items.
    The self-similarity is removed, so this row measures co-purchase signal only (repeats get no free boost)."""

    def __init__(self, neighbours: int = 100):
        self.neighbours = neighbours

    def fit(self, train: TrainData) -> None:
        self.train = train
        self.popularity = recent_popularity(train)
        users, user_codes = np.unique(train.purchases["user_id"].to_numpy(dtype=str), return_inverse=True)
        self.user_index = pd.Index(users)
        self.user_items = sp.csr_matrix(
            (np.ones(len(user_codes), dtype=np.float32), (user_codes, train.purchases["item_idx"].to_numpy())),
            shape=(len(users), train.n_items),
        )
        self.user_items.data[:] = 1.0  # binary: bought at least once
        self.user_items.sum_duplicates()
        self.user_items.data[:] = 1.0
        sim = cosine_similarity(self.user_items.T, dense_output=True).astype(np.float32)
        np.fill_diagonal(sim, 0.0)
        if 0 < self.neighbours < sim.shape[1]:
            drop = np.argpartition(-sim, self.neighbours, axis=1)[:, self.neighbours :]
            np.put_along_axis(sim, drop, 0.0, axis=1)
        self.similarity = sim

    def score(self, user_ids: Sequence[str]) -> np.ndarray:
        rows = self.user_index.get_indexer(pd.Index(user_ids))
        history = np.zeros((len(user_ids), self.train.n_items), dtype=np.float32)
        known = rows >= 0
        history[known] = self.user_items[rows[known]].toarray()
        return lexicographic(history @ self.similarity, self.popularity)


class ALSMatrixFactorisation:
    """Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) with the `implicit` library's ALS:
    confidence = alpha x (invoices with the item), fixed seed, single-threaded BLAS (reproducible)."""

    def __init__(self, factors: int = 64, regularization: float = 0.05, alpha: float = 10.0, iterations: int = 15):
        self.params = dict(factors=factors, regularization=regularization, iterations=iterations)
        self.alpha = alpha

    def fit(self, train: TrainData) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        self.train = train
        self.popularity = recent_popularity(train)
        users, user_codes = np.unique(train.purchases["user_id"].to_numpy(dtype=str), return_inverse=True)
        self.user_index = pd.Index(users)
        counts = sp.csr_matrix(
            (np.ones(len(user_codes), dtype=np.float32), (user_codes, train.purchases["item_idx"].to_numpy())),
            shape=(len(users), train.n_items),
        )
        counts.sum_duplicates()
        # implicit parallelises over users itself; BLAS threads on top only slow it down (and it warns).
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(**self.params, random_state=SEED, num_threads=1)
            model.fit(counts * self.alpha, show_progress=False)
        self.user_factors = np.asarray(model.user_factors)
        self.item_factors = np.asarray(model.item_factors)

    def score(self, user_ids: Sequence[str]) -> np.ndarray:
        rows = self.user_index.get_indexer(pd.Index(user_ids))
        scores = np.zeros((len(user_ids), self.train.n_items), dtype=np.float32)
        known = rows >= 0
        scores[known] = self.user_factors[rows[known]] @ self.item_factors.T
        # Unknown users: all zeros, i.e. popularity order.
        return lexicographic(scores, self.popularity)


class _SymmetricSpMM(torch.autograd.Function):
    """A @ X for a symmetric sparse A, with the gradient A @ G: torch's generic sparse backward transposes the CSR
    matrix on every step, which made LightGCN's backward pass 7x slower than its forward pass here."""

    @staticmethod
    def forward(ctx, adjacency: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        ctx.adjacency = adjacency
        return torch.sparse.mm(adjacency, dense)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, torch.sparse.mm(ctx.adjacency, grad)


class LightGCN:
    """LightGCN (He et al. 2020) in plain torch: user and item embeddings smoothed over the normalised user-item
    purchase graph (a torch sparse adjacency), trained with BPR on (user, bought item, random item) triples.
    Fixed seed, CPU, one thread, a fixed number of epochs."""

    def __init__(
        self,
        dim: int = 64,
        layers: int = 2,
        epochs: int = 40,
        lr: float = 0.02,
        reg: float = 1e-3,
        batch_size: int = 16384,
    ):
        self.dim, self.layers, self.epochs = dim, layers, epochs
        self.lr, self.reg, self.batch_size = lr, reg, batch_size

    def _adjacency(self, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> torch.Tensor:
        # Symmetric bipartite graph: nodes 0..n_users-1 are users, n_users.. are items.
        rows = np.concatenate([users, items + n_users])
        cols = np.concatenate([items + n_users, users])
        degree = np.bincount(rows, minlength=n_users + n_items).astype(np.float64)
        inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1.0)), 0.0)
        values = inv_sqrt[rows] * inv_sqrt[cols]
        index = torch.from_numpy(np.stack([rows, cols]).astype(np.int64))
        size = (n_users + n_items, n_users + n_items)
        coo = torch.sparse_coo_tensor(index, torch.from_numpy(values.astype(np.float32)), size, check_invariants=True)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": CSR is ~10x faster than COO here
            warnings.simplefilter("ignore", UserWarning)
            return coo.coalesce().to_sparse_csr()

    def _propagate(self, adjacency: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        layers = [embedding]
        for _ in range(self.layers):
            layers.append(_SymmetricSpMM.apply(adjacency, layers[-1]))
        return torch.stack(layers).mean(dim=0)

    def fit(self, train: TrainData) -> None:
        self.train = train
        self.popularity = recent_popularity(train)
        users, user_codes = np.unique(train.purchases["user_id"].to_numpy(dtype=str), return_inverse=True)
        self.user_index = pd.Index(users)
        n_users, n_items = len(users), train.n_items
        pairs = np.unique(np.stack([user_codes, train.purchases["item_idx"].to_numpy()], axis=1), axis=0)
        adjacency = self._adjacency(pairs[:, 0], pairs[:, 1], n_users, n_items)

        with single_thread():  # a second intra-op thread made each step several times slower on a busy 2-core box
            self._train(adjacency, pairs, n_users, n_items)

    def _train(self, adjacency: torch.Tensor, pairs: np.ndarray, n_users: int, n_items: int) -> None:
        generator = torch.Generator().manual_seed(SEED)
        embedding = torch.nn.Parameter(torch.randn(n_users + n_items, self.dim, generator=generator) * 0.1)
        optimiser = torch.optim.Adam([embedding], lr=self.lr)
        u_all = torch.from_numpy(pairs[:, 0].astype(np.int64))
        i_all = torch.from_numpy(pairs[:, 1].astype(np.int64)) + n_users
        for _ in range(self.epochs):
            order = torch.randperm(len(pairs), generator=generator)
            for start in range(0, len(pairs), self.batch_size):
                batch = order[start : start + self.batch_size]
                u, pos = u_all[batch], i_all[batch]
                neg = torch.randint(n_items, (len(batch),), generator=generator) + n_users
                final = self._propagate(adjacency, embedding)
                margin = (final[u] * (final[pos] - final[neg])).sum(dim=1)
                l2 = embedding[u].pow(2).sum() + embedding[pos].pow(2).sum() + embedding[neg].pow(2).sum()
                loss = -torch.nn.functional.logsigmoid(margin).mean() + self.reg * l2 / len(batch)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        with torch.no_grad():
            final = self._propagate(adjacency, embedding).numpy()
        self.user_emb, self.item_emb = final[:n_users], final[n_users:]

    def score(self, user_ids: Sequence[str]) -> np.ndarray:
        rows = self.user_index.get_indexer(pd.Index(user_ids))
        scores = np.zeros((len(user_ids), self.train.n_items), dtype=np.float32)
        known = rows >= 0
        scores[known] = self.user_emb[rows[known]] @ self.item_emb.T
        return lexicographic(scores, self.popularity)


register(
    "popularity",
    Popularity,
    grid={"window_days": [7, 14, 28, 56]},
    description="orders per item in a recent window (guests included)",
    group="baseline",
)
register(
    "personal_freq",
    PersonalFrequency,
    description="user's past invoices with the item; ties by popularity",
    group="baseline",
)
register(
    "personal_decay",
    TimeDecayedFrequency,
    grid={"half_life_days": [7, 14, 30, 60, 120, 240, 480]},
    description="sum of 0.5^(age/half-life) over the user's purchases of the item",
    group="baseline",
)
register(
    "itemknn",
    ItemKNN,
    grid={"neighbours": [20, 100, 0]},
    description="item-item cosine on the purchase matrix (0 = all neighbours)",
    group="baseline",
)
register(
    "als_mf",
    ALSMatrixFactorisation,
    grid={"factors": [64, 128, 256], "alpha": [0.5, 1.0, 4.0]},
    description="implicit-feedback ALS matrix factorisation (implicit library)",
    group="baseline",
)
register(
    "lightgcn",
    LightGCN,
    grid={"reg": [1e-4, 1e-3, 1e-2]},
    description="LightGCN in torch (BPR, 2 layers, 64-d, 40 epochs of 16k-triple batches, seed 42)",
    group="baseline",
)
