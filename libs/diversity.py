"""Maximal marginal relevance (Carbonell & Goldstein, 1998) over title embeddings."""

from __future__ import annotations

import numpy as np


def mmr_order(relevance: np.ndarray, vectors: np.ndarray, weight: float, k: int) -> np.ndarray:
    """Indices of the first `k` results. weight 0 = pure relevance order (stable), 1 = pure novelty.

    Relevance is min-max normalised so the trade-off does not depend on the score scale; vectors are
    assumed L2-normalised (cosine = dot product).
    """
    n = len(relevance)
    k = min(k, n)
    if weight <= 0 or n == 0:
        return np.argsort(-relevance, kind="stable")[:k]
    span = float(relevance.max() - relevance.min())
    rel = (relevance - relevance.min()) / span if span > 0 else np.zeros(n)
    sims = vectors @ vectors.T
    chosen: list[int] = []
    max_sim = np.full(n, -np.inf)
    available = np.ones(n, dtype=bool)
    for _ in range(k):
        penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
        gain = np.where(available, (1 - weight) * rel - weight * penalty, -np.inf)
        best = int(np.argmax(gain))
        chosen.append(best)
        available[best] = False
        max_sim = np.maximum(max_sim, sims[best])
    return np.array(chosen, dtype=np.int64)
