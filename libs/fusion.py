"""Score fusion of the rankers, as fitted on the validation split by training (artifacts/models/fusion.json).

fused = bias + sum_m weight_m * (score_m - mean_m) / std_m over the models that answered. Standardising first
makes a single model's score comparable with the blend, so a variant or a degraded call (one ranker down)
still yields a score on the same scale.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FUSED = "fused"


@dataclass(frozen=True)
class Fusion:
    weights: Mapping[str, float]
    mean: Mapping[str, float]
    std: Mapping[str, float]
    bias: float = 0.0

    @classmethod
    def load(cls, path: Path) -> "Fusion":
        raw = json.loads(Path(path).read_text())
        return cls(raw["weights"], raw["mean"], raw["std"], float(raw.get("bias", 0.0)))

    def to_json(self) -> dict:
        return {"weights": dict(self.weights), "mean": dict(self.mean), "std": dict(self.std), "bias": self.bias}

    def standardise(self, model: str, scores: np.ndarray) -> np.ndarray:
        return (np.asarray(scores, np.float64) - self.mean[model]) / max(self.std[model], 1e-6)

    def combine(self, scores: Mapping[str, np.ndarray]) -> np.ndarray:
        """Blend of whichever models are present; weights renormalised over them."""
        present = [m for m in scores if m in self.weights]
        if not present:
            raise ValueError("no fused model among " + ", ".join(scores))
        total = sum(abs(self.weights[m]) for m in present) or 1.0
        fused = sum(self.weights[m] / total * self.standardise(m, scores[m]) for m in present)
        return self.bias + fused
