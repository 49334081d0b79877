"""Fused score of the rankers as served: the weights training fitted on the validation split
(artifacts/models/fusion.json, see libs.features.fusion), applied to scores standardised over the candidates.

Explanations score several masked scenarios of the same request at once. Standardising each scenario on its own
would hide any change that moves every candidate alike, so every row is standardised with the statistics of the
reference row (the unmasked scenario): the fused score stays a fixed linear map of the models' scores, and the
difference between two rows is exactly the masked evidence's effect. For a single scenario this is the same as
`libs.features.fusion.fuse`, which training used to fit the weights.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from libs.features.fusion import load_fusion

FUSED = "fused"


@dataclass(frozen=True)
class Fusion:
    weights: Mapping[str, float]

    @classmethod
    def load(cls, path: Path) -> "Fusion":
        return cls(dict(load_fusion(path)["weights"]))

    def combine(self, scores: Mapping[str, np.ndarray], reference_row: int = 0) -> np.ndarray:
        """[B, C] fused scores of the models present (a model that is down is left out)."""
        used = [m for m in self.weights if m in scores]
        if not used:
            raise ValueError("no scores for any fused model among " + ", ".join(scores))
        total = 0.0
        for m in used:
            s = np.atleast_2d(np.asarray(scores[m], np.float64))
            ref = s[reference_row]
            std = np.sqrt(ref.var())
            # One candidate (or all equal): no spread to standardise by; keep the model's own units.
            total = total + float(self.weights[m]) * (s - ref.mean()) / (std if std > 1e-9 else 1.0)
        return np.asarray(total)
