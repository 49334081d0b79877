"""Personalised-search PROXY: no real queries exist for this shop, so queries are made from held-out purchases.

Protocol (on a Split; label every number it produces as a proxy):

- For each evaluated customer and each product they bought in the window, the query is a salient word of the
  product's title: the title word (after stemming, stop words removed) that matches the fewest catalogue titles
  while still matching at least MIN_DF of them (so the top 10 is never complete by construction); only alphabetic
  words of 3+ letters; ties alphabetical. E.g. "HANGING LANTERN WHITE" -> "lantern".
- One query per (customer, salient word); a customer contributes at most MAX_QUERIES_PER_USER queries (chosen with
  a fixed seed).
- Relevant = all the customer's window purchases whose title contains the word.
- Metric: NDCG@10 of Search(query, user) over the whole catalogue; items not returned are not retrieved.

Searchers here: BM25 (bm25s, unpersonalised; equal BM25 scores ordered by recent popularity) and BM25 candidates
re-ranked by the customer's time-decayed purchase frequency (then BM25, then popularity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import bm25s
import numpy as np
import pandas as pd
import scipy.sparse as sp
import Stemmer

from training.evaluate.baselines import PersonalFrequency, recent_popularity
from training.evaluate.metrics import ranked_list_ndcg, single_thread
from training.evaluate.protocol import Searcher
from training.evaluate.registry import register_searcher
from training.evaluate.split import Split, TrainData

SEED = 42
K_SEARCH = 10
MIN_DF = 10
MAX_QUERIES_PER_USER = 5
CANDIDATES = 100

_STEMMER = Stemmer.Stemmer("english")


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-case, English stop words removed, Snowball-stemmed: the same for titles, queries and matching."""
    return bm25s.tokenize(list(texts), stopwords="en", stemmer=_STEMMER, return_ids=False, show_progress=False)


@dataclass(frozen=True)
class Query:
    user_id: str
    text: str  # the surface word, as a shopper would type it
    stem: str
    relevant: np.ndarray  # item indices


def salient_stems(titles: Sequence[str], min_df: int = MIN_DF) -> list[str | None]:
    """Per title: its stem with the smallest document frequency >= min_df (ties alphabetical), or None."""
    tokens = tokenize(titles)
    df: dict[str, int] = {}
    for toks in tokens:
        for tok in set(toks):
            df[tok] = df.get(tok, 0) + 1
    out: list[str | None] = []
    for toks in tokens:
        # Words only (no sizes like "50" or "3"), at least 3 letters.
        words = {t for t in toks if t.isalpha() and len(t) >= 3 and df[t] >= min_df}
        eligible = sorted(words, key=lambda t: (df[t], t))
        out.append(eligible[0] if eligible else None)
    return out


def _surface_word(title: str, stem: str) -> str:
    """The first word of the title whose stem is `stem` (what a shopper would type), lower-case."""
    for word in title.lower().replace("-", " ").split():
        word = "".join(ch for ch in word if ch.isalnum())
        if word and _STEMMER.stemWord(word) == stem:
            return word
    return stem


def build_queries(
    split: Split, max_per_user: int = MAX_QUERIES_PER_USER, seed: int = SEED, min_df: int = MIN_DF
) -> list[Query]:
    """The proxy queries of a split (deterministic for a given seed)."""
    titles = split.train.items["title"].tolist()
    stems = salient_stems(titles, min_df)
    title_tokens = [set(t) for t in tokenize(titles)]
    rng = np.random.default_rng(seed)
    queries: list[Query] = []
    for row, user_id in enumerate(split.users):
        bought = split.truth.indices[split.truth.indptr[row] : split.truth.indptr[row + 1]]
        by_stem: dict[str, int] = {}
        for item in sorted(bought):
            stem = stems[item]
            if stem is not None and stem not in by_stem:
                by_stem[stem] = item
        chosen = sorted(by_stem)
        if len(chosen) > max_per_user:
            chosen = sorted(rng.choice(chosen, size=max_per_user, replace=False).tolist())
        for stem in chosen:
            relevant = np.array([i for i in bought if stem in title_tokens[i]], dtype=np.int64)
            queries.append(Query(str(user_id), _surface_word(titles[by_stem[stem]], stem), stem, relevant))
    return queries


class BM25Search:
    """Unpersonalised lexical search over titles with bm25s; equal scores ordered by recent popularity."""

    def fit(self, train: TrainData) -> None:
        self.retriever = bm25s.BM25()
        self.retriever.index(tokenize(train.items["title"].tolist()), show_progress=False)
        self.popularity = recent_popularity(train)
        self.n_items = train.n_items

    def bm25(self, query: str) -> np.ndarray:
        tokens = tokenize([query])[0]
        if not tokens:
            return np.zeros(self.n_items)
        return np.asarray(self.retriever.get_scores(tokens), dtype=np.float64)

    def _rank(self, keys: tuple[np.ndarray, ...], candidates: np.ndarray, k: int) -> np.ndarray:
        # lexsort: last key is primary; all keys descending.
        order = np.lexsort(tuple(-key[candidates] for key in reversed(keys)))
        return candidates[order][:k]

    def search(self, query: str, user_id: str | None, k: int = K_SEARCH) -> np.ndarray:
        scores = self.bm25(query)
        matching = np.flatnonzero(scores > 0)
        return self._rank((scores, self.popularity), matching, k)


class PersonalisedBM25(BM25Search):
    """BM25's top CANDIDATES re-ranked by the user's time-decayed purchase frequency, then BM25, then popularity."""

    def __init__(self, half_life_days: float = 30.0):
        self.personal = PersonalFrequency(half_life_days=half_life_days)

    def fit(self, train: TrainData) -> None:
        super().fit(train)
        self.personal.fit(train)
        # All customers' decayed frequencies at once, as a sparse matrix: one row lookup per query.
        users, codes = np.unique(train.purchases["user_id"].to_numpy(dtype=str), return_inverse=True)
        self.user_index = pd.Index(users)
        self.matrix = sp.csr_matrix(
            (self.personal.weights(train.purchases["ts"]), (codes, train.purchases["item_idx"].to_numpy())),
            shape=(len(users), train.n_items),
        )

    def _personal(self, user_id: str) -> np.ndarray:
        row = self.user_index.get_indexer([user_id])[0]
        if row < 0:
            return np.zeros(self.n_items)
        return self.matrix[row].toarray()[0]

    def search(self, query: str, user_id: str | None, k: int = K_SEARCH) -> np.ndarray:
        scores = self.bm25(query)
        matching = np.flatnonzero(scores > 0)
        candidates = self._rank((scores, self.popularity), matching, CANDIDATES)
        if user_id is None:
            return candidates[:k]
        return self._rank((self._personal(user_id), scores, self.popularity), candidates, k)


def evaluate_searcher(searcher: Searcher, queries: Sequence[Query], k: int = K_SEARCH) -> dict[str, float]:
    """Mean proxy NDCG@k over the queries (the searcher must already be fitted)."""
    with single_thread():
        values = [ranked_list_ndcg(searcher.search(q.text, q.user_id, k), q.relevant, k) for q in queries]
    return {f"proxy_ndcg@{k}": float(np.nanmean(values)) if values else float("nan"), "queries": len(values)}


def describe_queries(queries: Sequence[Query]) -> dict[str, object]:
    frame = pd.DataFrame({"text": [q.text for q in queries], "n_relevant": [len(q.relevant) for q in queries]})
    return {
        "queries": len(queries),
        "users": len({q.user_id for q in queries}),
        "mean_relevant": round(float(frame["n_relevant"].mean()), 2) if len(frame) else 0.0,
        "top_words": frame["text"].value_counts().head(8).to_dict(),
    }


register_searcher("bm25", BM25Search, description="bm25s over titles, unpersonalised (PROXY)")
register_searcher(
    "bm25+personal_decay",
    PersonalisedBM25,
    grid={"half_life_days": [7, 30, 120]},
    description="BM25 top-100 re-ranked by time-decayed personal frequency (PROXY)",
)
