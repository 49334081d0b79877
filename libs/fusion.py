"""The fused ranking score, in one place: training fits it, evaluation scores with it, ranking orders by it and
explanation explains it.

    fused(c) = sum over the rankers m that answered of  weight[m] * (score_m(c) - centre[m]) / scale[m]
               + weight[PRIOR] * (prior(c) - centre[PRIOR]) / scale[PRIOR]

prior(c) is the purchase-frequency prior (libs.features.frequency: GP-TopFreq, the strongest simple baseline of
`make eval`, as -log(1 + rank)). It is blended in because the rankers and the frequency order err differently: the
blend is better than either on the validation and the test window alike (README, "Results"). Its
weight is fitted on validation NDCG@20 after the rankers' (0 = not blended; fusion files from before it have none).
It is model-free and computed where the fused score is, so it works when a ranker is down; an explanation reports
its term as it is (a PURCHASE_FREQUENCY piece).

`centre` and `scale` are each ranker's score mean and standard deviation over the validation candidates, fitted once
with the weights (artifacts/models/fusion.json). They do not depend on the request, so an item's fused score depends
only on its own per-model scores (every ranker scores each candidate independently of the others). Hence:

- ranking over 200 candidates and explanation over the 20 of a page compute the same fused score for an item;
- the fused score is a fixed linear map of the models' scores, so masking a piece of evidence changes it by exactly
  sum_m weight[m] * (score_m(full) - score_m(masked)) / scale[m] - the contribution an explanation reports;
- scores are comparable across requests (the confidence of an explanation reads them).

The repeat-vs-explore setting of a variant (libs.scoring.Arm.explore, in [0, 1]) adds `discovery` to the fused
score: explore x explore_span for products the customer never bought, 0 for the rest. explore_span is the width of
the middle 98% of the fused scores over the validation candidates, so 1 puts practically every never-bought
candidate first, and the term is additive and model-free: an explanation reports it as it is (a DISCOVERY piece).

Shelves (libs.shelves) may have weights of their own, fitted on the same validation candidates by the shelf's own
objective (training.train.shelf_fusion): `for_shelf` gives the Fusion a shelf ranks with, with the same centre,
scale and explore_span (so every property above holds per shelf); a shelf without its own uses these weights.

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
DISCOVERY = "discovery"  # model_scores key of the repeat-vs-explore term
PRIOR = "purchase_frequency"  # fusion key (and model_scores key) of the purchase-frequency prior


@dataclass(frozen=True)
class Fusion:
    weights: Mapping[str, float]
    centre: Mapping[str, float] = field(default_factory=dict)  # missing = 0
    scale: Mapping[str, float] = field(default_factory=dict)  # missing = 1
    explore_span: float = 0.0  # the fused score's spread on the validation candidates (see the module doc)
    shelves: Mapping[str, Mapping[str, float]] = field(
        default_factory=dict
    )  # shelf (libs.domain.Shelf value) -> weights

    def for_shelf(self, shelf: str) -> "Fusion":
        """The fusion a shelf ranks with: its own weights when fitted, else these (same normalisation)."""
        weights = self.shelves.get(shelf)
        return Fusion(dict(weights), self.centre, self.scale, self.explore_span) if weights else self

    def combine(self, scores: Mapping[str, np.ndarray]) -> np.ndarray:
        """Fused scores (float64, same shape as each model's scores) over the weighted models present (the prior,
        under PRIOR, among them)."""
        used = [m for m in self.weights if m in scores]
        if not [m for m in used if m != PRIOR]:
            raise ValueError("no scores for any fused model among " + (", ".join(scores) or "none"))
        return np.asarray(sum(self.term(m, scores[m]) for m in used))

    def term(self, name: str, values: np.ndarray) -> np.ndarray:
        """One component's share of the fused score (float64, as `values`); zeros when it has no weight."""
        values = np.asarray(values, np.float64)
        if name not in self.weights:
            return np.zeros_like(values)
        return float(self.weights[name]) * (values - self.centre.get(name, 0.0)) / self.scale.get(name, 1.0)

    def discovery(self, explore: float, never_bought: np.ndarray) -> np.ndarray:
        """The repeat-vs-explore term [C]: explore x explore_span where `never_bought` [C] is true, else 0."""
        return float(explore) * self.explore_span * np.asarray(never_bought, np.float64)

    def with_weights(self, weights: Mapping[str, float]) -> "Fusion":
        return Fusion(dict(weights), self.centre, self.scale, self.explore_span)

    def as_dict(self) -> dict:
        return {
            "weights": dict(self.weights),
            "centre": dict(self.centre),
            "scale": dict(self.scale),
            "explore_span": self.explore_span,
        } | ({"shelves": {k: {"weights": dict(v)} for k, v in self.shelves.items()}} if self.shelves else {})

    @classmethod
    def from_dict(cls, blob: Mapping) -> "Fusion":
        missing = [k for k in ("centre", "scale", "explore_span") if k not in blob]
        if missing:
            raise ValueError(
                f"fusion file has no {'/'.join(missing)}: written by an older training run; run `make models` again"
            )
        shelves = {k: dict(v["weights"]) for k, v in blob.get("shelves", {}).items()}  # absent: none fitted
        return cls(
            dict(blob["weights"]), dict(blob["centre"]), dict(blob["scale"]), float(blob["explore_span"]), shelves
        )

    @classmethod
    def load(cls, path: Path) -> "Fusion":
        return cls.from_dict(json.loads(Path(path).read_text()))


def fit_normalisation(
    scores: Mapping[str, np.ndarray], valid: np.ndarray | None = None
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


def never_bought(history_items: np.ndarray, cand_idx: np.ndarray) -> np.ndarray:
    """[C] bool: candidates not among the customer's purchases (`history_items`: item indices, fresh ones included)."""
    return ~np.isin(np.asarray(cand_idx, np.int64), np.asarray(history_items, np.int64))


def spread(fused: np.ndarray) -> float:
    """explore_span from fused scores over validation candidates: the width of their middle 98% (1st to 99th
    percentile; the full range is set by a few outliers), 1.0 when they are all equal."""
    fused = np.asarray(fused, np.float64)
    value = float(np.subtract(*np.percentile(fused, [99, 1]))) if fused.size else 0.0
    return value if value > 1e-9 else 1.0
