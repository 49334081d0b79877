"""Metrics against hand-computed values, including ties, an empty ground truth and negative scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from training.evaluate.metrics import (
    already_bought_share,
    coverage,
    evaluate_scores,
    ndcg_at_k,
    per_user_metrics,
    rank_scores,
    ranked_list_ndcg,
    ranking_order,
    top_k,
)

N_ITEMS = 30


def approx(value: float):
    """torchmetrics computes in float32."""
    return pytest.approx(value, rel=1e-5)


def truth_matrix(rows: list[list[int]], n_items: int = N_ITEMS) -> sp.csr_matrix:
    dense = np.zeros((len(rows), n_items), dtype=bool)
    for u, items in enumerate(rows):
        dense[u, items] = True
    return sp.csr_matrix(dense)


def scores_ranking(order: list[int], n_items: int = N_ITEMS) -> np.ndarray:
    """A score row that ranks `order` first (in that order), the rest after in index order."""
    row = np.zeros(n_items)
    for position, item in enumerate(order):
        row[item] = n_items - position
    return row


def test_single_relevant_at_rank_two() -> None:
    m = per_user_metrics(scores_ranking([7, 3])[None, :], truth_matrix([[3]])).iloc[0]
    assert m["ndcg@20"] == approx(1 / math.log2(3))
    assert m["recall@20"] == 1.0 and m["hit_rate@10"] == 1.0 and m["mrr"] == 0.5


def test_two_relevant_at_ranks_one_and_three() -> None:
    m = per_user_metrics(scores_ranking([5, 6, 7])[None, :], truth_matrix([[5, 7]])).iloc[0]
    assert m["ndcg@20"] == approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert m["recall@20"] == 1.0


def test_cut_offs_and_full_ranking_mrr() -> None:
    # Relevant items at ranks 11 and 25 of 30: outside HitRate@10 and Recall@20, but MRR sees the full ranking.
    order = list(range(29, -1, -1))  # item 29 first ... item 0 last
    m = per_user_metrics(scores_ranking(order)[None, :], truth_matrix([[order[10], order[24]]])).iloc[0]
    assert m["hit_rate@10"] == 0.0
    assert m["recall@20"] == approx(0.5)
    assert m["ndcg@20"] == approx((1 / math.log2(12)) / (1 + 1 / math.log2(3)))
    assert m["mrr"] == approx(1 / 11)


def test_recall_at_20_with_more_relevant_than_20() -> None:
    relevant = list(range(25))
    m = per_user_metrics(scores_ranking(relevant)[None, :], truth_matrix([relevant])).iloc[0]
    assert m["recall@20"] == approx(20 / 25) and m["ndcg@20"] == approx(1.0)


def test_ties_are_broken_by_item_index() -> None:
    flat = np.zeros((2, N_ITEMS))
    assert ranking_order(flat)[0, :3].tolist() == [0, 1, 2]
    m = per_user_metrics(flat, truth_matrix([[0], [5]]))
    assert m["mrr"].tolist() == [1.0, approx(1 / 6)]
    # A partial tie: items 4 and 2 share the top score; 2 goes first.
    row = np.zeros(N_ITEMS)
    row[[4, 2]] = 1.0
    assert top_k(row[None, :], 3)[0].tolist() == [2, 4, 0]


def test_negative_scores_are_ranked_not_dropped() -> None:
    # torchmetrics treats scores <= 0 as "not retrieved" in recall / MRR; our rank transform must prevent that.
    row = -np.arange(1, N_ITEMS + 1, dtype=float)  # item 0 best
    m = per_user_metrics(row[None, :], truth_matrix([[0, 1]])).iloc[0]
    assert m["recall@20"] == 1.0 and m["mrr"] == 1.0 and m["ndcg@20"] == approx(1.0)
    assert rank_scores(ranking_order(row[None, :])).min() == 1.0


def test_empty_ground_truth_is_left_out_of_the_means() -> None:
    scores = np.stack([scores_ranking([1]), scores_ranking([2])])
    truth = truth_matrix([[1], []])
    per_user = per_user_metrics(scores, truth)
    assert per_user.loc[1].isna().all()
    result = evaluate_scores(scores, truth, truth_matrix([[], []]))
    assert result["users"] == 1 and result["ndcg@20"] == 1.0 and result["mrr"] == 1.0
    assert ndcg_at_k(scores, truth) == 1.0
    assert math.isnan(ndcg_at_k(scores, truth_matrix([[], []])))


def test_user_without_history_has_no_repeat_segment() -> None:
    scores = scores_ranking([1, 0])[None, :]
    result = evaluate_scores(scores, truth_matrix([[0, 1]]), truth_matrix([[]]))
    assert result["users_repeat"] == 0 and math.isnan(result["ndcg@20_repeat"])
    assert result["users_new"] == 1 and result["ndcg@20_new"] == approx(1.0)
    assert result["already_bought@20"] == 0.0


def test_repeat_and_new_segments() -> None:
    # History {0}; truth {0, 1}; ranking 1 then 0.
    result = evaluate_scores(scores_ranking([1, 0])[None, :], truth_matrix([[0, 1]]), truth_matrix([[0]]))
    assert result["ndcg@20_repeat"] == approx(1 / math.log2(3))  # item 0 at rank 2, alone in its segment
    assert result["recall@20_repeat"] == 1.0
    assert result["ndcg@20_new"] == approx(1.0)
    assert result["already_bought@20"] == approx(1 / 20)


def test_coverage_and_already_bought() -> None:
    top = np.array([[0, 1], [1, 2]])
    assert coverage(top, 10) == approx(0.3)
    history = truth_matrix([[0, 1], [5]], n_items=10)
    assert already_bought_share(top, history) == approx(0.5)  # 2 of 2, then 0 of 2


def test_bad_scores_are_rejected() -> None:
    with pytest.raises(ValueError, match="NaN"):
        per_user_metrics(np.full((1, N_ITEMS), np.nan), truth_matrix([[0]]))
    with pytest.raises(ValueError, match="shape"):
        per_user_metrics(np.zeros((1, 5)), truth_matrix([[0]]))


def test_ranked_list_ndcg() -> None:
    assert ranked_list_ndcg([5, 3], [3], k=10) == approx(1 / math.log2(3))
    # A relevant item the list does not return counts as not retrieved, even though the list is short.
    assert ranked_list_ndcg([5, 3], [3, 9], k=10) == approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert ranked_list_ndcg([], [3], k=10) == 0.0
    assert ranked_list_ndcg([3, 4], [3], k=10) == 1.0
    assert math.isnan(ranked_list_ndcg([1, 2], [], k=10))
    with pytest.raises(ValueError):
        ranked_list_ndcg([1, 1], [1])


def test_new_item_metrics_count_only_products_never_bought_before() -> None:
    # History {0, 1}; truth {0, 2, 3}: new = {2, 3}. Ranking: 0, 2, 1, then 3 at rank 25 (outside the top 20).
    order = [0, 2, 1] + [i for i in range(4, 25)] + [3]
    result = evaluate_scores(scores_ranking(order)[None, :], truth_matrix([[0, 2, 3]]), truth_matrix([[0, 1]]))
    assert result["recall@20_new"] == approx(0.5)  # 2 found, 3 not
    # 2 at rank 2 among the two new relevant items; the ideal puts both new items at ranks 1 and 2.
    assert result["ndcg@20_new"] == approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert result["ndcg@20_repeat"] == approx(1.0) and result["users_new"] == 1


def test_intra_list_diversity() -> None:
    from training.evaluate.metrics import intra_list_diversity

    embeddings = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    assert intra_list_diversity(np.array([[0, 1]]), embeddings) == approx(0.0)  # same direction
    assert intra_list_diversity(np.array([[0, 2]]), embeddings) == approx(1.0)  # orthogonal
    # Pairs (0,1)=0, (0,2)=1, (1,2)=1 -> mean distance 2/3; a second user with distance 1 - cos45.
    value = intra_list_diversity(np.array([[0, 1, 2], [0, 3, 3]]), embeddings)
    second = (0 + 2 * (1 - 1 / math.sqrt(2))) / 3  # (0,3), (0,3), (3,3)
    assert value == approx((2 / 3 + second) / 2)
    assert math.isnan(intra_list_diversity(np.array([[0, 1]]), None))
