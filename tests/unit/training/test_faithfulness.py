"""The faithfulness metrics (training/evaluate/faithfulness.py) on small set functions whose answers are known."""

import numpy as np
import pytest

from training.evaluate.faithfulness import (
    completeness_gap,
    drop_ratio,
    eraser_ks,
    faithfulness,
    kept_rows,
    named_and_random_drops,
    ranking,
    removed_rows,
)

WEIGHTS = np.array([0.5, 3.0, -1.0, 1.5])  # an additive game: f(z) = 2 + w . z
BASELINE, SCORE = 2.0, 2.0 + WEIGHTS.sum()  # 6.0; |score - baseline| = 4


def linear(z: np.ndarray) -> np.ndarray:
    return BASELINE + np.atleast_2d(z) @ WEIGHTS


def test_ranking_is_descending_and_stable():
    assert ranking(np.array([1.0, 3.0, 1.0, -2.0])).tolist() == [1, 0, 2, 3]


def test_rows_remove_or_keep_the_top_k_and_cap_at_m():
    order = np.array([2, 0, 1])
    assert removed_rows(order, [1, 2, 5]).tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert kept_rows(order, [1]).tolist() == [[0, 0, 1]]


def test_eraser_bins_of_m_pieces():
    assert eraser_ks(30) == [1, 2, 3, 6, 15]
    assert eraser_ks(4) == [1, 1, 1, 1, 2]


def test_curves_of_the_exact_attribution_on_an_additive_game():
    out = faithfulness(linear, WEIGHTS, SCORE, BASELINE, ks=[1, 2, 3, 4])
    # removing 3.0, then 1.5, then 0.5, then -1.0 leaves (4-3)/4, (1-1.5)/4, (-0.5-0.5)/4, 0
    assert out["deletion_curve"] == pytest.approx([0.25, -0.125, -0.25, 0.0])
    assert out["deletion_auc"] == pytest.approx(np.mean([0.25, -0.125, -0.25, 0.0]))
    assert out["insertion_curve"] == pytest.approx([0.75, 1.125, 1.25, 1.0])
    assert out["insertion_auc"] == pytest.approx(np.mean([0.75, 1.125, 1.25, 1.0]))
    # ERASER bins for M = 4: k = 1, 1, 1, 1, 2 -> comprehensiveness (3, 3, 3, 3, 4.5) / 4
    assert out["comprehensiveness"] == pytest.approx(np.mean([3, 3, 3, 3, 4.5]) / 4)
    # sufficiency: score - f(top-k only) = 4 - 3 (k = 1), 4 - 4.5 (k = 2)
    assert out["sufficiency"] == pytest.approx(np.mean([1, 1, 1, 1, -0.5]) / 4)


def test_a_reversed_attribution_scores_worse_on_every_metric():
    good = faithfulness(linear, WEIGHTS, SCORE, BASELINE, ks=[1, 2])
    bad = faithfulness(linear, -WEIGHTS, SCORE, BASELINE, ks=[1, 2])
    assert bad["deletion_auc"] > good["deletion_auc"]
    assert bad["insertion_auc"] < good["insertion_auc"]
    assert bad["comprehensiveness"] < good["comprehensiveness"]
    assert bad["sufficiency"] > good["sufficiency"]


def test_curves_are_normalised_when_the_score_is_below_the_baseline():
    out = faithfulness(lambda z: 10.0 - np.atleast_2d(z) @ np.array([4.0, 1.0]), np.array([-4.0, -1.0]), 5.0, 10.0, [1])
    # ranking puts -1 first: removing it gives 6 -> (6 - 10) / 5
    assert out["deletion_curve"] == pytest.approx([-0.8])


def test_named_and_random_drops_use_the_pool_only():
    # pool = pieces 0, 1, 3 (piece 1 is not a past purchase and is skipped even though it ranks first)
    named, rand = named_and_random_drops(linear, WEIGHTS, pool=[0, 2, 3], random_pick=[0, 2], score=SCORE, k=2)
    assert named == pytest.approx(1.5 + 0.5)
    assert rand == pytest.approx(0.5 - 1.0)


def test_drop_ratio_divides_by_the_mean_absolute_random_drop():
    assert drop_ratio([2.0, 4.0], [1.0, -1.0]) == pytest.approx(3.0)


def test_completeness_gap_is_the_interaction_share():
    assert completeness_gap(WEIGHTS, SCORE, BASELINE) == pytest.approx(0.0)
    assert completeness_gap(np.array([1.0, 1.0]), 5.0, 1.0) == pytest.approx(0.5)
