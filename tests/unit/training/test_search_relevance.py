import numpy as np
import pandas as pd
import pytest

from libs import domain as d
from libs.relevance import TitleMatcher
from training.evaluate.search_relevance import (
    SearchQuery,
    _misspell,
    build_queries,
    false_match_claims,
    graded_ndcg,
    list_metrics,
    typo_table,
)

TITLES = [
    "LUNCH BAG RED RETROSPOT",
    "LUNCH BAG WOODLAND",
    "LUNCH BAG CARS BLUE",
    "RED RETROSPOT LUNCH BOX",
    "JUMBO BAG RED RETROSPOT",
    "REGENCY TEACUP AND SAUCER",
    "WOODLAND CHARLOTTE BAG",
    "RED RETROSPOT MUG",
    "CHARLOTTE SHOPPER BAG",
    "PAISLEY BAG",
]


def test_graded_ndcg_rewards_full_matches_first():
    grades = np.array([2, 2, 1, 0])
    assert graded_ndcg(np.array([0, 1, 2, 3]), grades) == pytest.approx(1.0)
    assert graded_ndcg(np.array([2, 0, 1]), grades) < 1.0
    assert graded_ndcg(np.array([3]), grades) == pytest.approx(0.0)
    assert np.isnan(graded_ndcg(np.array([0]), np.zeros(4, np.int64)))


def test_all_words_share_is_out_of_what_exists():
    q = SearchQuery("lunch bag", "phrase", np.array([2, 2, 2, 1, 1, 0, 1, 0, 1, 1]), "lunch bag")
    got = list_metrics(np.array([0, 3, 1, 2]), q)
    assert got["all_words_share"] == pytest.approx(1.0) and got["precision@10"] == pytest.approx(0.3)
    assert list_metrics(np.array([3, 4, 0]), q)["all_words_share"] == pytest.approx(1 / 3)


def test_queries_are_graded_against_the_intended_words():
    queries = build_queries(TITLES, [str(i) for i in range(len(TITLES))])
    by = {(q.kind, q.text): q for q in queries}
    lunch = by[("phrase", "lunch bag")]
    assert lunch.grades.tolist() == [2, 2, 2, 1, 1, 0, 1, 0, 1, 1]
    assert ("phrase", "red retrospot") in by
    assert all(q.kind != "phrase" or (q.grades == 2).sum() >= 3 for q in queries)
    assert by[("plural", "bags")].grades.tolist() == by[("type", "bag")].grades.tolist()
    assert ("misspelling", "bga") not in by  # too short to misspell meaningfully
    assert _misspell("holder") == "hodler" and len(_misspell("saucer")) == 6
    assert any(q.kind == "judged" for q in queries)


def test_typo_queries_keep_the_correct_spellings_grades():
    by = {(q.kind, q.text): q for q in build_queries(TITLES, [str(i) for i in range(len(TITLES))])}
    for typo in ("red retorspot", "red retrspot", "lnuch bag"):  # swapped or dropped letter in the longest word
        q = by[("misspelling", typo)]
        assert q.grades.tolist() == by[("phrase", q.intended)].grades.tolist()
    assert ("misspelling", "luch bag") not in by  # 4 letters: the rules correct none, so it is not a typo query


def test_typo_table_compares_each_typo_with_its_correct_spelling():
    rows = pd.DataFrame(
        [
            {"searcher": "served", "query": "hodler", "intended": "holder", "typo": 8, "correct": 10, "same": 0.8},
            {"searcher": "served", "query": "holer", "intended": "holder", "typo": 10, "correct": 10, "same": 1.0},
            {"searcher": "bm25", "query": "hodler", "intended": "holder", "typo": 0, "correct": 10, "same": 0.0},
        ]
    )
    served, bm25 = typo_table(rows)
    assert served["ratio"] == pytest.approx(0.9) and served["queries_at_target"] == 2
    assert served["typo_share"] == pytest.approx(0.9) and served["correct_share"] == pytest.approx(1.0)
    assert served["same_results"] == pytest.approx(0.9)
    assert bm25["ratio"] == 0.0 and bm25["queries_at_target"] == 0


def test_false_match_claims_counts_words_the_title_lacks():
    m = TitleMatcher(TITLES)
    ok = d.Explanation([d.Evidence(d.EvidenceKind.QUERY_MATCH, 20.0, text="lunch bag")], "", 0.5)
    similar = d.Explanation([d.Evidence(d.EvidenceKind.QUERY_SIMILAR, 0.3, text="sofa")], "", 0.5)
    wrong = d.Explanation([d.Evidence(d.EvidenceKind.QUERY_TERM, 0.3, text="sofa")], "", 0.5)
    assert false_match_claims([(ok, 0), (similar, 0)], TITLES, m) == (1, 0)
    assert false_match_claims([(wrong, 0)], TITLES, m) == (1, 1)
