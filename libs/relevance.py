"""Query relevance: what the shopper typed, as the one lexical signal that retrieval, ranking, explanation and
the search evaluation share.

Text is analysed like the BM25 index (lower-case, English stop words removed, Snowball-stemmed), so "lunch bags"
matches "LUNCH BAG RED RETROSPOT". A title's match with the query is graded:

    relevance = WEIGHT * (coverage + all_terms + PHRASE_BONUS * phrase)

coverage = share of the query's distinct terms the title contains, all_terms = 1 when it contains every one,
phrase = 1 when they appear in the query's order, side by side. Search adds it to the fused personal score, so a
title with every word the shopper typed ranks above any partial match, a partial match above a semantic-only one,
and the rankers' (personal) score orders products within each grade: personalisation reorders what is relevant and
fills in where relevant products run out. WEIGHT is larger than the spread of fused scores (standardised units),
which keeps the grades apart; being additive, its part of the served score is exactly measurable evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import bm25s
import numpy as np
import Stemmer

WEIGHT = 10.0
RELEVANCE = "relevance"  # its key in a result's model_scores
PHRASE_BONUS = 0.5

STEMMER = Stemmer.Stemmer("english")


def analyse(text: str) -> list[str]:
    """Index analysis of one text: lower-case, English stop words removed, Snowball-stemmed, in order."""
    return list(_analysed(text))


@lru_cache(maxsize=65536)
def _analysed(text: str) -> tuple[str, ...]:
    # Memoised: one bm25s.tokenize call costs ~0.1 ms (it builds a progress bar even when hidden), and explaining a
    # page asks about the same few query words for every candidate.
    tokens = bm25s.tokenize([text], stopwords="en", stemmer=STEMMER, return_ids=False, show_progress=False)
    return tuple(tokens[0]) if tokens else ()


def analyse_many(texts: Sequence[str]) -> list[list[str]]:
    tokens = bm25s.tokenize(list(texts), stopwords="en", stemmer=STEMMER, return_ids=False, show_progress=False)
    return [list(t) for t in tokens]


@dataclass(frozen=True)
class Match:
    terms: tuple[str, ...]  # analysed query terms the title contains, in query order
    coverage: float
    all_terms: bool
    phrase: bool

    @property
    def relevance(self) -> float:
        return WEIGHT * (self.coverage + float(self.all_terms) + PHRASE_BONUS * float(self.phrase))


NO_MATCH = Match((), 0.0, False, False)


def _has_phrase(query: Sequence[str], title: Sequence[str]) -> bool:
    n = len(query)
    return n >= 2 and any(list(title[i : i + n]) == list(query) for i in range(len(title) - n + 1))


def match(query_terms: Sequence[str], title_terms: Sequence[str]) -> Match:
    distinct = list(dict.fromkeys(query_terms))
    if not distinct:
        return NO_MATCH
    present = set(title_terms)
    hit = tuple(t for t in distinct if t in present)
    return Match(hit, len(hit) / len(distinct), len(hit) == len(distinct), _has_phrase(distinct, title_terms))


class TitleMatcher:
    """The catalogue's analysed titles, held once; grades candidates against a query."""

    def __init__(self, titles: Sequence[str]) -> None:
        self.title_terms = analyse_many(titles)
        self.term_sets = [set(t) for t in self.title_terms]

    def matches(self, query: str, items: Sequence[int]) -> list[Match]:
        terms = analyse(query)
        return [match(terms, self.title_terms[i]) if i >= 0 else NO_MATCH for i in items]

    def relevance(self, query: str, items: Sequence[int]) -> np.ndarray:
        return np.array([m.relevance for m in self.matches(query, items)], np.float64)

    def contains(self, item: int, term: str) -> bool:
        """Whether a title contains a (raw) query term, analysed as the index analyses it."""
        analysed = analyse(term)
        return bool(analysed) and all(t in self.term_sets[item] for t in analysed)
