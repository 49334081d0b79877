"""Typo corrections (libs.index.spelling) over a real SymSpell dictionary of toy titles."""

from __future__ import annotations

import pytest

from libs.index.spelling import Speller, max_edits

TITLES = [
    "WHITE METAL LANTERN",
    "GARDEN LANTERN SET",
    "CHRISTMAS TREE DECORATION",
    "CHRISTMAS LIGHTS",
    "CHRISTENING CARD",
    "SCANDINAVIAN REINDEER",
    "HAND WARMER",
    "CANDLE HOLDER",
]


@pytest.mark.parametrize(
    ("word", "edits"), [("cup", 0), ("mugs", 0), ("lante", 1), ("lantern", 1), ("chrismas", 1), ("christmas", 2)]
)
def test_allowed_edits_grow_with_word_length(word, edits):
    assert max_edits(word) == edits


def test_a_word_one_edit_off_is_corrected_from_five_letters():
    s = Speller(TITLES)
    assert s.correction("lanter") == "lantern"  # deletion
    assert s.correction("lantren") == "lantern"  # adjacent letters swapped: one edit
    assert s.correction("chrismas") == "christmas"
    assert s.correction("holdr") == "holder"  # 5 letters: one edit
    assert s.correction("tre") == "" and s.correction("hnad") == ""  # under 5 letters: none


def test_two_edits_only_from_nine_letters():
    s = Speller(TITLES)
    assert s.correction("scandinavain") == "scandinavian"  # 12 letters, one swap
    assert s.correction("scandnavin") == "scandinavian"  # 10 letters, two deletions
    assert s.correction("lantrn") == "lantern"
    assert s.correction("lntrn") == ""  # 5 letters, two edits off: too far


def test_exact_words_are_preferred_and_never_corrected():
    s = Speller(TITLES)
    assert s.correction("candle") == ""  # "handle" would be one edit away, but "candle" is a title word
    assert s.correction("lanterns") == ""  # analysed as "lantern": a title word
    assert s.correction("without") == ""  # a stop word: nothing to search
    assert s.correction("12345") == "" and s.correction("zzzzzzz") == ""


def test_among_equally_near_words_the_most_frequent_wins():
    s = Speller(TITLES + ["CHRISTMAS CARD", "CHRISTMAS BAUBLE"])
    # "christmss" is 1 edit from "christmas" (3 titles); neither the less frequent nor farther words win.
    assert s.correction("christmss") == "christmas"


def test_corrected_query_replaces_only_the_misspelt_words():
    s = Speller(TITLES)
    assert s.correct("Chrismas lanter") == "christmas lantern"
    assert s.correct("white lanter, garden") == "white lantern, garden"  # the rest stays as typed
    assert s.correct("white lantern") == ""  # nothing corrected
    assert s.correct("") == ""


def test_new_titles_join_the_vocabulary():
    s = Speller(TITLES)
    assert s.correction("porcelan") == ""  # nothing near: no title has "porcelain" yet
    n = len(s)
    s.add(["PORCELAIN TEAPOT"])
    assert s.correction("porcelan") == "porcelain" and len(s) == n + 2
    assert s.correction("porcelain") == ""
