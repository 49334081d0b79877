"""make loop-eval's paired comparison of the frozen and the retrained bundle."""

import numpy as np

from training.loop_eval import loop_verdict, paired_difference


def test_paired_difference_counts_users_and_brackets_the_mean():
    a = np.array([0.1, 0.2, 0.3, 0.4, 0.5] * 20)
    b = a + np.array([0.1, 0.0, -0.05, 0.1, 0.1] * 20)
    d = paired_difference(a, b)
    assert d["mean"] == np.float64(np.mean(b - a))
    assert d["ci95"][0] < d["mean"] < d["ci95"][1] and d["ci95"][0] > 0
    assert (d["users_better"], d["users_worse"], d["users"]) == (60, 20, 100)


def test_verdict_claims_better_only_when_the_interval_is_above_zero():
    assert loop_verdict(0.34, 0.345, (0.002, 0.008)).startswith("(b) > (a): the retrained bundle ranks better")
    assert "interval includes 0" in loop_verdict(0.34, 0.342, (-0.001, 0.005))
    assert "NOT better" in loop_verdict(0.34, 0.34, (-0.003, 0.003))
