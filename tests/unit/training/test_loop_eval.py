"""make loop-eval's paired comparison of the frozen and the retrained bundle."""
import numpy as np

from training.loop_eval import paired_difference


def test_paired_difference_counts_users_and_brackets_the_mean():
    a = np.array([0.1, 0.2, 0.3, 0.4, 0.5] * 20)
    b = a + np.array([0.1, 0.0, -0.05, 0.1, 0.1] * 20)
    d = paired_difference(a, b)
    assert d["mean"] == np.float64(np.mean(b - a))
    assert d["ci95"][0] < d["mean"] < d["ci95"][1] and d["ci95"][0] > 0
    assert (d["users_better"], d["users_worse"], d["users"]) == (60, 20, 100)
