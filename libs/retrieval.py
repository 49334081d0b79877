"""Candidate generation. Query: BM25 (tantivy) + dense ANN (usearch HNSW over title embeddings), both following
the living catalogue (libs.index.products), fused by reciprocal rank fusion. User: the rankers' candidate pool
(libs.features.candidate_parts: own past items, co-purchase neighbours of recent ones, recent popularity), ordered by
reciprocal rank fusion of its parts, or a shelf's own candidates (libs.shelves)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from libs import domain as d
from libs import shelves
from libs.features import FeatureStore, Pop, UserContext, candidate_parts
from libs.features import POOL_CO_PURCHASE, POOL_HISTORY, POOL_POPULAR, POOL_SIMILAR
from libs.history import user_context
from libs.index.products import ProductIndexes
from libs.relevance import analyse
from libs.scoring import EncodeQuery, encode_or_degrade

RRF_K = 60  # the constant of Cormack et al. (2009); insensitive in practice
PER_SOURCE = 200
NEW_SEEDS, NEW_PER_USER = 5, 20  # Recommend: products newer than the bundle like the user's latest 5 purchases
RANKED_PARTS = {POOL_CO_PURCHASE: d.Source.CO_PURCHASE, POOL_SIMILAR: d.Source.SIMILAR_CUSTOMERS}  # pool part -> source
# Share of the caller's remaining time the query encoder may use: past it the answer is lexical-only (flagged),
# which leaves the gateway time to rank, instead of the whole request running out waiting on a slow encoder.
ENCODER_SHARE = 0.5


def rrf(lists: dict[d.Source, list[tuple[int, float]]], k: int = RRF_K) -> list[tuple[int, float, list[d.SourceRank]]]:
    """Reciprocal rank fusion of ranked (item, score) lists; ties broken by item index for determinism."""
    fused: dict[int, float] = {}
    ranks: dict[int, list[d.SourceRank]] = {}
    for source, ranked in lists.items():
        for rank, (item, score) in enumerate(ranked, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
            ranks.setdefault(item, []).append(d.SourceRank(source, rank, float(score)))
    order = sorted(fused, key=lambda i: (-fused[i], i))
    return [(i, fused[i], ranks[i]) for i in order]


class RetrievalCore:
    def __init__(
        self,
        product_ids: Sequence[str],
        titles: Sequence[str],
        item_vectors: np.ndarray,
        popularity: np.ndarray,
        parts: Callable[[UserContext], list[tuple[str, np.ndarray]]],
        history: Callable[[str, Sequence[d.UserEvent]], UserContext],
        encode: EncodeQuery,
        copurchase: sp.csr_matrix,
        half_life_days: float = 60.0,
    ) -> None:
        self.n_items = len(product_ids)  # the bundle's; popularity and histories index these
        self.indexes = ProductIndexes(product_ids, titles, item_vectors)
        self.item_vectors = np.asarray(item_vectors, np.float32)
        self.popularity = np.asarray(popularity, np.float64)
        self.parts = parts  # the user's candidate pool in parts (libs.features.candidate_parts)
        self.history = history
        self.encode = encode
        self.half_life_s = half_life_days * 86400.0
        self.copurchase = copurchase  # invoices shared by each pair of the bundle's products (bought together)
        self.item_index = {p: i for i, p in enumerate(product_ids)}  # the bundle's products: what the models know
        self.correct_typos = True  # off only to measure what typo tolerance costs (loadtest/typo_bench.py)
        # The text encoder reads the corrected query too: measured in `make eval`'s misspelling rows (docs/results.md).
        self.dense_corrected = True

    @classmethod
    def over_store(
        cls, store: FeatureStore, product_ids: Sequence[str], titles: Sequence[str], encode: EncodeQuery
    ) -> "RetrievalCore":
        """Retrieval over a feature store's data: its title embeddings, recent popularity, candidate pool and user
        histories (with fresh events) - how the service, the offline evaluation and the load floor build it."""
        return cls(
            product_ids,
            titles,
            store.item_emb,
            store.pop[:, Pop.LOG_ORDERS_28D],
            lambda ctx: candidate_parts(store, ctx),
            lambda user_id, recent: user_context(store, user_id, recent),
            encode,
            store.copurchase,
        )

    def _candidates(
        self, fused: list[tuple[int, float, list[d.SourceRank]]], limit: int, terms: Sequence[str] = ()
    ) -> list[d.Candidate]:
        out, ix = [], self.indexes
        for item, score, ranks in fused[:limit]:
            matched = [t for t in terms if t in ix.terms[item]]
            out.append(d.Candidate(ix.product_ids[item], ix.titles[item], score, ranks, matched))
        return out

    async def query_candidates(
        self, query: str, user_id: str, limit: int, timeout: float, recent: Sequence[d.UserEvent] = ()
    ) -> tuple[list[d.Candidate], list[d.Degradation], str]:
        """Candidates and degradations for the query as corrected (libs.index.spelling), and the corrected query
        ("" when no word needed it). `timeout`: the caller's remaining time; a slow or dead encoder gives
        lexical-only candidates, flagged."""
        degradations: list[d.Degradation] = []
        corrected = self.indexes.speller.correct(query) if self.correct_typos else ""
        searched = corrected or query
        lists = {d.Source.LEXICAL: self.indexes.search_lexical(searched, PER_SOURCE)}
        dense_text = searched if self.dense_corrected else query
        emb = await encode_or_degrade(self.encode, [dense_text], timeout * ENCODER_SHARE, degradations)
        if emb is not None:
            lists[d.Source.DENSE] = self.indexes.search_dense(emb[0], PER_SOURCE)
        terms = analyse(searched)
        if user_id:
            # Personal signal for search: the user's own past purchases that match a query term.
            bought = self._repeat(self.history(user_id, recent))
            lists[d.Source.REPEAT_PURCHASE] = [(i, s) for i, s in bought if self.indexes.terms[i].intersection(terms)]
        return self._candidates(rrf(lists), limit, terms), degradations, corrected

    def _repeat(self, h: UserContext, limit: int = PER_SOURCE) -> list[tuple[int, float]]:
        """User's items by time-decayed purchase frequency (TIFU-style), strongest first."""
        if len(h.items) == 0:
            return []
        age = h.now - h.ts
        weights = np.power(0.5, age / self.half_life_s)
        scores = np.bincount(h.items, weights=weights, minlength=self.n_items)
        order = np.flatnonzero(scores)[np.argsort(-scores[np.flatnonzero(scores)], kind="stable")]
        return [(int(i), float(scores[i])) for i in order[:limit]]

    def _newer_like_recent(self, h: UserContext) -> list[tuple[int, float]]:
        """Products newer than the bundle (which its pool cannot know) nearest the user's latest purchases."""
        latest = list(dict.fromkeys(h.items[::-1].tolist()))[:NEW_SEEDS]
        return self.indexes.newer_like(self.item_vectors[latest].mean(axis=0), NEW_PER_USER)

    async def user_candidates(
        self,
        user_id: str,
        recent: Sequence[d.UserEvent],
        limit: int,
        shelf: d.Shelf = d.Shelf.FOR_YOU,
        context: Sequence[str] = (),
    ) -> tuple[list[d.Candidate], list[d.Degradation]]:
        """FOR_YOU: exactly the rankers' candidate pool (what they were trained and evaluated on), each part a
        source: own past items by decayed frequency, co-purchase neighbours, similar customers' products, popular
        items; plus up to NEW_PER_USER products newer than the bundle (dense). With `limit` >= POOL_MAX (the
        gateway's ask) nothing of the pool is cut unless it is full, when those may displace its weakest. Other
        shelves: their own candidates (libs.shelves); `context` = the context product ids (unknown ones contribute
        nothing)."""
        if shelf == d.Shelf.FREQUENTLY_BOUGHT_TOGETHER:
            limit = min(limit, shelves.FBT_CANDIDATES)
            together = shelves.frequently_bought_together(
                self.copurchase, shelves.context_items(self.item_index, context), limit
            )
            return self._candidates(rrf({d.Source.CO_PURCHASE: together}), limit), []
        if shelf == d.Shelf.SIMILAR_ITEMS:
            limit = min(limit, shelves.SIMILAR_CANDIDATES)
            items = shelves.context_items(self.item_index, context)[:1]
            similar = []
            if items:
                near = self.indexes.search_dense(self.item_vectors[items[0]], limit + 1)
                similar = [(i, s) for i, s in near if i != items[0]][:limit]
            return self._candidates(rrf({d.Source.DENSE: similar}), limit), []
        h = self.history(user_id, recent)
        parts = self.parts(h)
        if shelf == d.Shelf.BUY_AGAIN:
            parts = shelves.buy_again_parts(parts, h.items)
        elif shelf == d.Shelf.DISCOVER:
            parts = shelves.discover_parts(parts, h.items)
        lists: dict[d.Source, list[tuple[int, float]]] = {}
        for part, items in parts:
            if part == POOL_HISTORY:
                keep = set(items.tolist())
                lists[d.Source.REPEAT_PURCHASE] = [(i, s) for i, s in self._repeat(h, len(h.items)) if i in keep]
            elif part in RANKED_PARTS:  # in the part's own order
                lists[RANKED_PARTS[part]] = [(int(i), 1.0 / r) for r, i in enumerate(items, start=1)]
            elif part == POOL_POPULAR:
                lists[d.Source.POPULARITY] = [(int(i), float(self.popularity[i])) for i in items]
        if shelf in (d.Shelf.FOR_YOU, d.Shelf.DISCOVER) and len(h.items) and (newer := self._newer_like_recent(h)):
            lists[d.Source.DENSE] = newer
        return self._candidates(rrf(lists), limit), []
