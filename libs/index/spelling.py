"""Typo tolerance: the catalogue's title vocabulary and the corrections a query's words may get.

Like Elasticsearch's `fuzziness: AUTO` (with the issue's thresholds, AUTO:5,9): a word of 5..8 letters may be one
edit off, one of 9 or more two, shorter ones none; an edit is an insertion, deletion, substitution or transposition
of adjacent letters (optimal string alignment, as tantivy's fuzzy term query with `transposition_cost_one`).

Exact matches are preferred absolutely: a word whose analysed terms some title holds is never corrected, so a fuzzy
neighbour can never compete with it ("candle" keeps "candle" and never brings "handle"). A word no title holds is
replaced by the title word nearest to it within its allowed edits, the most frequent (in titles) among equals, and
the whole corrected query then drives retrieval, relevance and the explanation, so shoppers see what they got.

SymSpell (symspellpy) finds the candidates: its delete dictionary answers a lookup in microseconds (24 us p50 for a
corrected query here; one whose words are all known costs 2.5 us, no lookup: loadtest/typo_bench.py), where
tantivy's fuzzy term query scores every hit 1.0, not BM25, and does not say which term it matched (tried: "lanter"
finds "lantern" and "latern" alike), so it could neither name the corrected query nor keep BM25's order.

Words join the vocabulary as titles arrive (`add`), without a rebuild; they are not removed when a product sells out
or is retitled (its words may still be another product's, and the counts only order equally near words).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from symspellpy import SymSpell, Verbosity

from libs.relevance import analyse, analyse_many

MAX_EDITS = 2
# Same words as the index's tokenizer (bm25s: two or more word characters); only letters are ever corrected.
WORD = re.compile(r"(?u)\b\w\w+\b")


def max_edits(word: str) -> int:
    """Edits a word of this length may be off: 0 below 5 letters, 1 for 5..8, 2 for 9 or more."""
    n = len(word)
    return 0 if n < 5 else 1 if n < 9 else 2


class Speller:
    """The title vocabulary (surface words with the number of titles holding each, and the analysed terms the
    lexical index can match) and the corrections of a query against it."""

    def __init__(self, titles: Iterable[str] = ()) -> None:
        # prefix_length 7: SymSpell's default (deletes of the first 7 letters index a word).
        self.symspell = SymSpell(max_dictionary_edit_distance=MAX_EDITS, prefix_length=7)
        self.terms: set[str] = set()
        self.add(titles)

    def add(self, titles: Iterable[str], terms: Sequence[Sequence[str]] | None = None) -> None:
        """New (or retitled) titles: their words join the vocabulary at once. `terms`: their analysed terms, when
        the caller has them already (libs.relevance.analyse_many)."""
        titles = list(titles)
        for title in titles:
            for word in {w for w in WORD.findall(title.lower()) if w.isalpha()}:
                self.symspell.create_dictionary_entry(word, 1)
        for analysed in terms if terms is not None else analyse_many(titles) if titles else []:
            self.terms.update(analysed)

    def correction(self, word: str) -> str:
        """The title word that replaces `word` (lower-case), or "" when it stays: it is too short, not all letters,
        a stop word, held by some title (after analysis: "lanterns" is "lantern"), or nothing is near enough."""
        edits = max_edits(word)
        if not edits or not word.isalpha():
            return ""
        terms = analyse(word)
        if not terms or all(t in self.terms for t in terms):
            return ""
        found = self.symspell.lookup(word, Verbosity.CLOSEST, max_edit_distance=edits)
        best = min(found, key=lambda s: (s.distance, -s.count, s.term), default=None)
        return best.term if best is not None and best.distance > 0 else ""

    def correct(self, query: str) -> str:
        """The query with every word that needs it corrected (lower-case; the rest as typed), or "" when no word
        was corrected."""
        out, end = [], 0
        for m in WORD.finditer(query):
            fix = self.correction(m.group().lower())
            if fix:
                out += [query[end : m.start()], fix]
                end = m.end()
        return "".join(out) + query[end:] if out else ""

    def __len__(self) -> int:
        return len(self.symspell.words)
