import numpy as np
import pytest

from libs.relevance import PHRASE_BONUS, WEIGHT, TitleMatcher, analyse, match

TITLES = [
    "LUNCH BAG RED RETROSPOT",
    "RED RETROSPOT LUNCH BOX",
    "JUMBO BAG RED",
    "REGENCY TEACUP AND SAUCER",
    "SET OF 3 REGENCY CAKE TINS",
    "BAG LUNCH CHARLOTTE",
]


def test_grades_all_words_above_partial_above_none():
    m = TitleMatcher(TITLES)
    rel = m.relevance("lunch bags", range(len(TITLES)))
    full_phrase, partial, none = rel[0], rel[1], rel[3]
    assert full_phrase == pytest.approx(WEIGHT * (1 + 1 + PHRASE_BONUS))  # plural stems to the title's word
    assert rel[5] == pytest.approx(WEIGHT * 2)  # both words, not as a phrase
    assert partial == pytest.approx(WEIGHT * 0.5) and rel[2] == pytest.approx(WEIGHT * 0.5)
    assert none == 0.0
    assert full_phrase > rel[5] > partial > none


def test_match_lists_only_the_words_the_title_has():
    got = match(analyse("red lunch box"), analyse("LUNCH BAG RED RETROSPOT"))
    assert set(got.terms) == {"red", "lunch"} and not got.all_terms and got.coverage == pytest.approx(2 / 3)
    assert match([], analyse("ANY TITLE")).relevance == 0.0


def test_contains_uses_the_index_analysis():
    m = TitleMatcher(TITLES)
    assert m.contains(0, "bags") and m.contains(3, "teacups") and not m.contains(3, "tea")
    assert not m.contains(0, "the")  # a stop word is never a claimed match
    assert np.array_equal(m.relevance("lunch", [-1]), [0.0])  # a product unknown to the catalogue
