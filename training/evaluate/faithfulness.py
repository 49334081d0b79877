"""Faithfulness metrics of one attribution over a set function f(binary presence rows) -> score (pure numpy).

Pieces are ranked by attribution, most positive first (ties: lower index first). With score = f(all present) and
baseline = f(none present), every curve is normalised by |score - baseline| so items of any score scale average:

- deletion curve, k = 1..10: (f(top-k removed) - baseline) / |score - baseline|; its AUC is the mean over k (the area
  under the step curve, x scaled to [0, 1]). Lower is better: the named pieces carry the score (Petsiuk et al. 2018);
- insertion curve, k = 1..10: (f(only the top-k present) - baseline) / |score - baseline|; higher is better;
- ERASER (DeYoung et al. 2020) comprehensiveness (score - f(top-k removed)) and sufficiency
  (score - f(only the top-k)), normalised the same way and averaged over k as ERASER's AOPC does over its bins
  {1, 5, 10, 20, 50} % of the input: k = max(1, round(b * M)) for those bins (M pieces). Comprehensiveness higher is
  better, sufficiency lower;
- k beyond M is M (everything removed / present).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

CURVE_KS = tuple(range(1, 11))
ERASER_BINS = (0.01, 0.05, 0.1, 0.2, 0.5)

SetFunction = Callable[[np.ndarray], np.ndarray]


def ranking(attribution: np.ndarray) -> np.ndarray:
    """Piece indices, largest attribution first; ties keep index order."""
    return np.argsort(-np.asarray(attribution, np.float64), kind="stable")


def eraser_ks(m: int, bins: Sequence[float] = ERASER_BINS) -> list[int]:
    return [min(m, max(1, round(b * m))) for b in bins]


def removed_rows(order: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """[len(ks), M] presence rows: all present except the top-k of `order`."""
    z = np.ones((len(ks), len(order)), np.float64)
    for r, k in enumerate(ks):
        z[r, order[: min(k, len(order))]] = 0.0
    return z


def kept_rows(order: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """[len(ks), M] presence rows: only the top-k of `order` present."""
    return 1.0 - removed_rows(order, ks)


def normalised(values: np.ndarray, score: float, baseline: float) -> np.ndarray:
    return (np.asarray(values, np.float64) - baseline) / abs(score - baseline)


def faithfulness(
    f: SetFunction, attribution: np.ndarray, score: float, baseline: float, ks: Sequence[int] = CURVE_KS
) -> dict[str, float | list[float]]:
    """Deletion and insertion curves and AUCs, ERASER comprehensiveness and sufficiency of one attribution, from
    one call of f (2 x len(ks) + 2 x 5 rows)."""
    order = ranking(attribution)
    eks = eraser_ks(len(order))
    rows = np.vstack([removed_rows(order, ks), kept_rows(order, ks), removed_rows(order, eks), kept_rows(order, eks)])
    values = np.asarray(f(rows), np.float64)
    n, e = len(ks), len(eks)
    deletion = normalised(values[:n], score, baseline)
    insertion = normalised(values[n : 2 * n], score, baseline)
    scale = abs(score - baseline)
    return {
        "deletion_curve": deletion.tolist(),
        "insertion_curve": insertion.tolist(),
        "deletion_auc": float(deletion.mean()),
        "insertion_auc": float(insertion.mean()),
        "comprehensiveness": float(np.mean((score - values[2 * n : 2 * n + e]) / scale)),
        "sufficiency": float(np.mean((score - values[2 * n + e :]) / scale)),
    }


def named_and_random_drops(
    f: SetFunction, attribution: np.ndarray, pool: Sequence[int], random_pick: Sequence[int], score: float, k: int = 3
) -> tuple[float, float]:
    """training/evaluate/fidelity.py's deletion test on one item: the score drop from removing the k pool pieces
    (past purchases) the attribution ranks highest, and from removing `random_pick` (k pool pieces drawn at random,
    the same draw for every explainer)."""
    pool = list(pool)
    named = [i for i in ranking(attribution) if i in set(pool)][:k]
    m = len(attribution)
    rows = np.ones((2, m), np.float64)
    rows[0, named] = 0.0
    rows[1, list(random_pick)] = 0.0
    values = np.asarray(f(rows), np.float64)
    return float(score - values[0]), float(score - values[1])


def drop_ratio(named: Sequence[float], random: Sequence[float]) -> float:
    """Mean named drop / mean |random drop|, as fidelity.py reports it (random drops can be ~0 or negative)."""
    return float(np.mean(named) / max(float(np.mean(np.abs(random))), 1e-12))


def completeness_gap(attribution: np.ndarray, score: float, baseline: float) -> float:
    """|score - baseline - sum of attributions| / |score - baseline|: for leave-one-out this is the interaction
    share (small means the pieces' effects add up, so leave-one-out ~ Shapley values here)."""
    return float(abs(score - baseline - float(np.sum(attribution))) / abs(score - baseline))
