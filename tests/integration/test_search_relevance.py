"""Over the evaluation's own queries, against the real trained models (in process, the served Search path):
no explanation claims a lexical match that the title does not contain, and head phrases come back with every word."""

import numpy as np
import pytest

from libs.catalog.store import load_dataset
from training.evaluate.search_relevance import _check_explanations, build_queries, list_metrics
from training.evaluate.served import ServedSearch
from training.evaluate.split import standard_splits

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def setup():
    test = standard_splits(load_dataset())[1]
    served = ServedSearch()
    served.fit(test.train)
    queries = build_queries(test.train.items["title"].tolist(), test.train.items["product_id"].astype(str).tolist())
    return test, served, queries


def test_no_explanation_claims_a_match_the_title_lacks(setup):
    test, served, queries = setup
    picked = [q for q in queries if q.kind == "phrase"][:6] + [q for q in queries if q.kind != "phrase"][::6]
    report = _check_explanations(served, picked, test, progress=False)
    assert report["query_claims_checked"] > 0 and report["false_match_claims"] == 0


def test_head_phrases_return_every_word_first(setup):
    _, served, queries = setup
    shares = [
        list_metrics(served.search(q.text, None, 10), q)["all_words_share"] for q in queries if q.kind == "phrase"
    ][:15]
    assert np.mean(shares) >= 0.9
