"""Paired bootstrap interval: deterministic, covers the true difference, pairs matter."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluate.stats import paired_bootstrap


def test_paired_bootstrap_is_deterministic_and_covers_the_true_difference() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.0, 1.0, 400)  # large between-customer spread shared by both models
    a = base + 0.05 + rng.normal(0, 0.01, 400)  # true mean difference 0.05
    first, second = paired_bootstrap(a, base, n_resamples=500), paired_bootstrap(a, base, n_resamples=500)
    assert first == second
    assert first["difference_ci_low"] < 0.05 < first["difference_ci_high"]
    assert first["difference"] == pytest.approx(a.mean() - base.mean())
    # Pairing removes the shared spread: the interval is far narrower than the spread of either sample's mean.
    assert first["difference_ci_high"] - first["difference_ci_low"] < 0.01
    assert first["ratio_ci_low"] < a.mean() / base.mean() < first["ratio_ci_high"]
    assert first["users"] == 400


def test_paired_bootstrap_spans_zero_when_models_are_equal_in_distribution() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0, 1, 300), rng.uniform(0, 1, 300)
    result = paired_bootstrap(a, b, n_resamples=500, seed=3)
    assert result["difference_ci_low"] < 0 < result["difference_ci_high"]


def test_undefined_pairs_are_dropped_and_bad_input_refused() -> None:
    a = np.array([1.0, np.nan, 0.5, 0.25])
    b = np.array([0.5, 0.2, np.nan, 0.25])
    assert paired_bootstrap(a, b, n_resamples=50)["users"] == 2
    with pytest.raises(ValueError):
        paired_bootstrap(np.ones(3), np.ones(4))
