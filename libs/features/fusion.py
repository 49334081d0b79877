"""Fused ranking score: a weighted sum of the rankers' per-candidate scores, each standardised per scenario.

The weights are fitted on the validation split by `python -m training.train` and written to
artifacts/models/fusion.json ({"weights": {"transformer_ranker": w1, "gnn_ranker": w2}, ...}). Standardising each
model's scores over the scenario's candidates makes the blend independent of each model's logit scale.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np


def standardise(scores: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(s - mean) / std per row over the valid candidates ([B, C]); invalid entries are returned unchanged."""
    s = np.asarray(scores, np.float64)
    v = np.ones_like(s, bool) if valid is None else np.asarray(valid, bool)
    n = np.maximum(v.sum(-1, keepdims=True), 1)
    mean = np.where(v, s, 0.0).sum(-1, keepdims=True) / n
    var = np.where(v, (s - mean) ** 2, 0.0).sum(-1, keepdims=True) / n
    z = (s - mean) / np.sqrt(var + 1e-12)
    return np.where(v, z, s)


def fuse(scores: Mapping[str, np.ndarray], weights: Mapping[str, float], valid: np.ndarray | None = None
         ) -> np.ndarray:
    """sum_m weights[m] * standardise(scores[m]) over the models present in both mappings ([B, C] float64).

    A model missing from `scores` (down or late) is left out and the remaining weights are used as they are.
    """
    used = [m for m in weights if m in scores]
    if not used:
        raise ValueError("no scores for any weighted model")
    total = sum(float(weights[m]) * standardise(scores[m], valid) for m in used)
    return np.asarray(total)


def load_fusion(path: Path) -> dict:
    """The fusion JSON written by training (weights + how they were chosen)."""
    return json.loads(Path(path).read_text())
