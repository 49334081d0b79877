"""Search proxy: query construction, BM25 baseline, personal re-ranking, metric."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluate.search_proxy import (
    BM25Search,
    PersonalisedBM25,
    Query,
    build_queries,
    evaluate_searcher,
    salient_stems,
)


def test_salient_stem_is_the_rarest_word_still_matching_min_df() -> None:
    titles = ["WHITE METAL LANTERN", "RED METAL LANTERN", "HANGING GLASS LANTERN", "RED BAG", "50 RED CUPS"]
    assert salient_stems(titles, min_df=2) == ["metal", "metal", "lantern", "red", "red"]
    assert salient_stems(["A B"], min_df=2) == [None]


def test_build_queries_relevant_are_all_matching_window_purchases(split) -> None:
    queries = build_queries(split, min_df=2)
    by_user = {(q.user_id, q.text): q.relevant.tolist() for q in queries}
    # A bought 0 (WHITE METAL LANTERN) and 1 (RED METAL LANTERN) in the window: "metal" matches both.
    assert by_user[("A", "metal")] == [0, 1]
    assert ("B", "lunch") not in by_user  # "lunch" is in one title only (< MIN_DF)


def test_bm25_returns_only_matching_titles(split) -> None:
    search = BM25Search()
    search.fit(split.train)
    found = search.search("lantern", None, 10)
    assert sorted(found.tolist()) == [0, 1, 2]
    assert search.search("teapot", None, 10).size == 0


def test_personalised_search_puts_the_users_purchases_first(split) -> None:
    plain, personal = BM25Search(), PersonalisedBM25(half_life_days=30)
    plain.fit(split.train)
    personal.fit(split.train)
    # Equal BM25 for the three lanterns, so popularity orders them: 0 (2 orders), 2 (1 order, by C), 1 (none).
    assert plain.search("lantern", None, 10).tolist() == [0, 2, 1]
    assert personal.search("lantern", "C", 10).tolist() == [2, 0, 1]
    assert personal.search("lantern", "A", 3).tolist() == [0, 2, 1]
    assert personal.search("red", "nobody", 10).tolist() == plain.search("red", None, 10).tolist()
    assert personal.search("red", None, 10).tolist() == plain.search("red", None, 10).tolist()


def test_evaluate_searcher_perfect_and_empty() -> None:
    class Perfect:
        def fit(self, train):
            pass

        def search(self, query, user_id, k):
            return np.array([7, 8])

    queries = [Query("A", "x", "x", np.array([7])), Query("B", "y", "y", np.array([7, 8]))]
    assert evaluate_searcher(Perfect(), queries)["proxy_ndcg@10"] == pytest.approx(1.0)
    assert np.isnan(evaluate_searcher(Perfect(), [])["proxy_ndcg@10"])
