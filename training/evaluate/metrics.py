"""Ranking metrics over the full catalogue, computed with torchmetrics' retrieval functions.

Per user: Recall@20, NDCG@20 (binary gains), HitRate@10, MRR (reciprocal rank of the first relevant item in the
full ranking, no cut-off). Over all users: catalogue coverage of the top-20 lists and the share of top-20 items the
user already bought before the cut-off. The same NDCG@20 / Recall@20 restricted to the ground-truth items the user
had bought before ("repeat") and had not ("new").

Two conventions, decided here once:

- Ties. A score matrix is first turned into one strict ranking per user; equal scores are ordered by item index
  (lower first), deterministically. Scorers that want a meaningful order among equal scores (e.g. all the items
  a user never bought) must break ties themselves (the baselines here use popularity).
  This also sidesteps a torchmetrics convention: its recall / reciprocal rank treat items with a score <= 0 as not
  retrieved, so the library is always given strictly positive rank scores (n_items for the first item ... 1).
- Empty ground truth. A metric is undefined for a user with nothing relevant; such users are left out of that
  metric's mean (NaN per user, `nanmean` over users), and the count of users behind each mean is reported.

Coverage, the already-bought share and intra-list diversity have no library implementation (a few lines of numpy
each). ild@20 = mean over users of the mean pairwise cosine distance between the title embeddings (MiniLM, the
ones the rankers read) of the top-20 items; NaN when no embeddings are given.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torchmetrics.functional.retrieval import (
    retrieval_hit_rate,
    retrieval_normalized_dcg,
    retrieval_recall,
    retrieval_reciprocal_rank,
)

K = 20  # Recall@K, NDCG@K, coverage@K, already_bought@K
K_HIT = 10  # HitRate@K_HIT

MAIN_METRICS = ("recall@20", "ndcg@20", "hit_rate@10", "mrr")
SEGMENT_METRICS = ("ndcg@20_repeat", "recall@20_repeat", "ndcg@20_new", "recall@20_new")
LIST_METRICS = ("coverage@20", "already_bought@20", "ild@20")
ALL_METRICS = MAIN_METRICS + LIST_METRICS + SEGMENT_METRICS


@contextmanager
def single_thread() -> Iterator[None]:
    """torch on one intra-op thread while it loops over users: the per-user tensors are tiny, and on a busy
    2-core machine a second spinning thread made the loop ten times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def ranking_order(scores: np.ndarray) -> np.ndarray:
    """Item indices of each row, best first; ties go to the lower item index (stable sort)."""
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [n_users, n_items], got shape {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    return np.argsort(-scores.astype(np.float64), axis=1, kind="stable")


def rank_scores(order: np.ndarray) -> np.ndarray:
    """Strictly positive scores encoding `order`: n_items for the first item of each row down to 1 for the last."""
    n_users, n_items = order.shape
    preds = np.empty((n_users, n_items), dtype=np.float32)
    values = np.broadcast_to(np.arange(n_items, 0, -1, dtype=np.float32), (n_users, n_items))
    np.put_along_axis(preds, order, values, axis=1)
    return preds


def top_k(scores: np.ndarray, k: int = K) -> np.ndarray:
    """[n_users, k] best item indices per row (same tie rule as the metrics)."""
    return ranking_order(scores)[:, :k]


def _user_metrics(preds: torch.Tensor, target: torch.Tensor, prefix: str = "", full: bool = True) -> dict:
    if not bool(target.any()):
        names = MAIN_METRICS if full else ("ndcg@20", "recall@20")
        return {f"{name}{prefix}": np.nan for name in names}
    out = {
        f"ndcg@20{prefix}": float(retrieval_normalized_dcg(preds, target, top_k=K)),
        f"recall@20{prefix}": float(retrieval_recall(preds, target, top_k=K)),
    }
    if full:
        out["hit_rate@10"] = float(retrieval_hit_rate(preds, target, top_k=K_HIT))
        out["mrr"] = float(retrieval_reciprocal_rank(preds, target))
    return out


def per_user_metrics(scores: np.ndarray, truth: sp.csr_matrix, history: sp.csr_matrix | None = None) -> pd.DataFrame:
    """One row per user: the main metrics, and the repeat / new segment metrics when `history` is given.

    truth, history: bool [n_users, n_items] (history = bought before the cut-off). NaN where undefined.
    """
    scores = np.asarray(scores)
    if scores.shape != truth.shape:
        raise ValueError(f"scores {scores.shape} and ground truth {truth.shape} differ in shape")
    preds = torch.from_numpy(rank_scores(ranking_order(scores)))
    truth_dense = torch.from_numpy(truth.toarray().astype(bool))
    hist_dense = torch.from_numpy(history.toarray().astype(bool)) if history is not None else None
    rows = []
    with single_thread():
        for u in range(scores.shape[0]):
            row = _user_metrics(preds[u], truth_dense[u])
            if hist_dense is not None:
                row.update(_user_metrics(preds[u], truth_dense[u] & hist_dense[u], "_repeat", full=False))
                row.update(_user_metrics(preds[u], truth_dense[u] & ~hist_dense[u], "_new", full=False))
            rows.append(row)
    return pd.DataFrame(rows)


def ndcg_at_k(scores: np.ndarray, truth: sp.csr_matrix, k: int = K) -> float:
    """Mean NDCG@k over users with a non-empty truth (the validation objective)."""
    preds = torch.from_numpy(rank_scores(ranking_order(scores)))
    truth_dense = torch.from_numpy(truth.toarray().astype(bool))
    with single_thread():
        values = [
            float(retrieval_normalized_dcg(preds[u], truth_dense[u], top_k=k))
            for u in range(preds.shape[0])
            if bool(truth_dense[u].any())
        ]
    return float(np.mean(values)) if values else float("nan")


def coverage(top: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one user's top list."""
    return len(np.unique(top)) / n_items if n_items else 0.0


def already_bought_share(top: np.ndarray, history: sp.csr_matrix) -> float:
    """Mean over users of the share of their top list they had bought before the cut-off."""
    if top.size == 0:
        return float("nan")
    rows = np.repeat(np.arange(top.shape[0]), top.shape[1])
    bought = np.asarray(history.tocsr()[rows, top.ravel()]).ravel().astype(bool)
    return float(bought.mean())


def intra_list_diversity(top: np.ndarray, embeddings: np.ndarray | None) -> float:
    """Mean over users of the mean pairwise cosine distance (1 - cosine) within each top list.

    With unit vectors, the sum of pairwise cosines of a list is (|sum of vectors|^2 - k) / 2, so no k x k matrix.
    """
    if embeddings is None or top.size == 0 or top.shape[1] < 2:
        return float("nan")
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    k = top.shape[1]
    summed = unit[top].sum(axis=1)
    mean_cosine = ((summed * summed).sum(axis=1) - k) / (k * (k - 1))
    return float(np.mean(1.0 - mean_cosine))


def evaluate_scores(
    scores: np.ndarray,
    truth: sp.csr_matrix,
    history: sp.csr_matrix,
    embeddings: np.ndarray | None = None,
) -> dict[str, float]:
    """All metrics of one model on one split, plus the number of users behind each segment mean."""
    return evaluate_scores_per_user(scores, truth, history, embeddings)[0]


def evaluate_scores_per_user(
    scores: np.ndarray,
    truth: sp.csr_matrix,
    history: sp.csr_matrix,
    embeddings: np.ndarray | None = None,
) -> tuple[dict[str, float], pd.DataFrame]:
    """(evaluate_scores' summary, the per-user metrics behind it: for paired comparisons between models)."""
    per_user = per_user_metrics(scores, truth, history)
    top = top_k(scores, K)
    out = {
        name: float(np.nanmean(per_user[name])) if per_user[name].notna().any() else float("nan")
        for name in MAIN_METRICS + SEGMENT_METRICS
    }
    out["coverage@20"] = coverage(top, scores.shape[1])
    out["already_bought@20"] = already_bought_share(top, history)
    out["ild@20"] = intra_list_diversity(top, embeddings)
    out["users"] = int(per_user["ndcg@20"].notna().sum())
    out["users_repeat"] = int(per_user["ndcg@20_repeat"].notna().sum())
    out["users_new"] = int(per_user["ndcg@20_new"].notna().sum())
    return out, per_user


def ranked_list_ndcg(ranked: np.ndarray, relevant: np.ndarray, k: int = 10) -> float:
    """NDCG@k of one ranked list (item indices, best first) against a set of relevant item indices.

    Items not in the list count as not retrieved, even when the list is shorter than k: the list is padded with k
    never-relevant placeholders before torchmetrics sees it. NaN when nothing is relevant.
    """
    ranked = np.asarray(ranked, dtype=np.int64)
    relevant = np.unique(np.asarray(relevant, dtype=np.int64))
    if len(relevant) == 0:
        return float("nan")
    if len(np.unique(ranked)) != len(ranked):
        raise ValueError("ranked list repeats an item")
    missing = np.setdiff1d(relevant, ranked)
    n_listed = len(ranked)
    # Positions: the list, then k placeholders, then relevant items that were not returned (score 0, unranked).
    preds = np.concatenate([np.arange(n_listed + k, k, -1), np.arange(k, 0, -1), np.zeros(len(missing))]).astype(
        np.float32
    )
    target = np.concatenate([np.isin(ranked, relevant), np.zeros(k, dtype=bool), np.ones(len(missing), dtype=bool)])
    with single_thread():
        return float(retrieval_normalized_dcg(torch.from_numpy(preds), torch.from_numpy(target), top_k=k))
