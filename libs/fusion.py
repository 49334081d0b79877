"""The fused ranking score, in one place: training fits it, evaluation scores with it, ranking orders by it and
explanation explains it.

    fused(c) = sum over the rankers m that answered of  weight[m] * (score_m(c) - centre[m]) / scale[m]

`centre` and `scale` are each ranker's score mean and standard deviation over the validation candidates, fitted once
with the weights (artifacts/models/fusion.json). They do not depend on the request, so an item's fused score depends
only on its own per-model scores (every ranker scores each candidate independently of the others). Hence:

- ranking over 200 candidates and explanation over the 20 of a page compute the same fused score for an item;
- the fused score is a fixed linear map of the models' scores, so masking a piece of evidence changes it by exactly
  sum_m weight[m] * (score_m(full) - score_m(masked)) / scale[m] - the contribution an explanation reports;
- scores are comparable across requests (the confidence of an explanation reads them).

A ranker that is down is left out with the remaining weights unchanged (the order among candidates is still that
of the ranker that answered; the response flags the degradation).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FUSED = "fused"


@dataclass(frozen=True)
class Fusion:
    weights: Mapping[str, float]
    centre: Mapping[str, float] = field(default_factory=dict)  # missing = 0
    scale: Mapping[str, float] = field(default_factory=dict)  # missing = 1

    def combine(self, scores: Mapping[str, np.ndarray]) -> np.ndarray:
        """Fused scores (float64, same shape as each model's scores) over the weighted models present."""
        used = [m for m in self.weights if m in scores]
        if not used:
            raise ValueError("no scores for any fused model among " + (", ".join(scores) or "none"))
        total = 0.0
        for m in used:
            s = np.asarray(scores[m], np.float64)
            total = total + float(self.weights[m]) * (s - self.centre.get(m, 0.0)) / self.scale.get(m, 1.0)
        return np.asarray(total)

    def with_weights(self, weights: Mapping[str, float]) -> "Fusion":
        return Fusion(dict(weights), self.centre, self.scale)

    def as_dict(self) -> dict:
        return {"weights": dict(self.weights), "centre": dict(self.centre), "scale": dict(self.scale)}

    @classmethod
    def from_dict(cls, blob: Mapping) -> "Fusion":
        if "centre" not in blob or "scale" not in blob:
            raise ValueError("fusion file has no score normalisation (centre/scale): written by an older training "
                             "run; run `make models` again")
        return cls(dict(blob["weights"]), dict(blob["centre"]), dict(blob["scale"]))

    @classmethod
    def load(cls, path: Path) -> "Fusion":
        return cls.from_dict(json.loads(Path(path).read_text()))


def fit_normalisation(scores: Mapping[str, np.ndarray], valid: np.ndarray | None = None
                      ) -> tuple[dict[str, float], dict[str, float]]:
    """(centre, scale) per model: mean and standard deviation of its scores over the `valid` entries."""
    centre, scale = {}, {}
    for m, s in scores.items():
        s = np.asarray(s, np.float64)
        v = s[np.asarray(valid, bool)] if valid is not None else s.ravel()
        if not v.size:
            raise ValueError(f"no valid scores of {m} to fit the normalisation on")
        centre[m] = float(v.mean())
        std = float(v.std())
        scale[m] = std if std > 1e-9 else 1.0  # constant scores: nothing to standardise by
    return centre, scale
