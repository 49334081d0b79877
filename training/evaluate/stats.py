"""Paired comparison of two models over the same customers: a bootstrap confidence interval (scipy.stats.bootstrap).

Resampling is over customers (the unit that is sampled from the shop's population); both models' per-customer
values are resampled together (paired), so the between-customer variance that both models share cancels.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import bootstrap

SEED = 42
N_RESAMPLES = 1000
CONFIDENCE = 0.95


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def _mean_ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) / np.mean(b, axis=axis)


def paired_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> dict[str, float]:
    """Mean(a) - mean(b) and mean(a) / mean(b) with percentile bootstrap intervals over paired units.

    a, b: one value per unit (customer), aligned; pairs where either is NaN (undefined metric) are dropped.
    Deterministic for a given seed.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two aligned 1-d arrays, got {a.shape} and {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if len(a) < 2:
        raise ValueError("need at least two paired values")
    out: dict[str, float] = {
        "users": int(len(a)),
        "n_resamples": n_resamples,
        "confidence": confidence,
        "seed": seed,
        "method": "paired percentile bootstrap over customers",
    }
    for name, statistic in (("difference", _mean_difference), ("ratio", _mean_ratio)):
        result = bootstrap(
            (a, b),
            statistic,
            paired=True,
            vectorized=True,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            random_state=np.random.default_rng(seed),
        )
        out[name] = float(statistic(a, b))
        out[f"{name}_ci_low"] = float(result.confidence_interval.low)
        out[f"{name}_ci_high"] = float(result.confidence_interval.high)
    return out
