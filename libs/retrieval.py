"""Candidate generation. Query: BM25 (tantivy) + dense ANN (usearch HNSW over title embeddings), both following
the living catalogue (libs.index.products), fused by reciprocal rank fusion. User: the rankers' candidate pool
(libs.features.candidate_parts: own past items, co-purchase neighbours of recent ones, recent popularity), ordered by
reciprocal rank fusion of its parts, or a shelf's own candidates (libs.shelves)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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
from libs.storefront import DEFAULT_FILTER, ProductFilter

RRF_K = 60  # the constant of Cormack et al. (2009); insensitive in practice
PER_SOURCE = 200
NEW_SEEDS, NEW_PER_USER = 5, 20  # Recommend: products newer than the bundle like the user's latest 5 purchases
RANKED_PARTS = {POOL_CO_PURCHASE: d.Source.CO_PURCHASE, POOL_SIMILAR: d.Source.SIMILAR_CUSTOMERS}  # pool part -> source
# Share of the caller's remaining time the query encoder may use: past it the answer is lexical-only (flagged),
# which leaves the gateway time to rank, instead of the whole request running out waiting on a slow encoder.
ENCODER_SHARE = 0.5
# A filter (libs.storefront) is applied to each source's list before fusion; while a list holds fewer than PER_SOURCE
# admitted products, its index is searched deeper (by the share admitted, at least DEEPEN times), up to MAX_DEPTH
# per source (a price band of a few percent of a 4,000 product catalogue still fills 200 candidates).
DEEPEN, MAX_DEPTH = 4, 12_800
# The context shelves' lists are read this many times deeper than they serve, so a filter still leaves enough.
SHELF_OVERFETCH = 8


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
        product: Callable[[str], Any] | None = None,
    ) -> None:
        """`product`: the catalogue's libs.products.model.ProductContent of a product id, or None (no row); what a
        filter judges. None = no catalogue (the offline evaluation): every product is as the bundle knows it."""
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
        self.product = product or (lambda _product_id: None)
        self.correct_typos = True  # off only to measure what typo tolerance costs (loadtest/typo_bench.py)
        # The text encoder reads the corrected query too: measured in `make eval`'s misspelling rows (docs/results.md).
        self.dense_corrected = True

    @classmethod
    def over_store(
        cls,
        store: FeatureStore,
        product_ids: Sequence[str],
        titles: Sequence[str],
        encode: EncodeQuery,
        product: Callable[[str], Any] | None = None,
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
            product=product,
        )

    def _admits(self, product_filter: ProductFilter) -> Callable[[int], bool]:
        """Whether the filter admits the product under an index key (memoised for the request)."""
        ids, seen = self.indexes.product_ids, {}

        def admits(key: int) -> bool:
            if key not in seen:
                seen[key] = product_filter.matches(ids[key], self.product(ids[key]))
            return seen[key]

        return admits

    @staticmethod
    def _only(
        ranked: list[tuple[int, float]], admits: Callable[[int], bool], limit: int | None = None
    ) -> list[tuple[int, float]]:
        """The admitted entries of `ranked`, in order, at most `limit` (None: all): stops judging once it has them."""
        out = []
        for entry in ranked:
            if limit is not None and len(out) >= limit:
                break
            if admits(entry[0]):
                out.append(entry)
        return out

    def _candidates(
        self, fused: list[tuple[int, float, list[d.SourceRank]]], limit: int, terms: Sequence[str] = ()
    ) -> list[d.Candidate]:
        out, ix = [], self.indexes
        for item, score, ranks in fused[:limit]:
            matched = [t for t in terms if t in ix.terms[item]]
            out.append(d.Candidate(ix.product_ids[item], ix.titles[item], score, ranks, matched))
        return out

    async def query_candidates(
        self,
        query: str,
        user_id: str,
        limit: int,
        timeout: float,
        recent: Sequence[d.UserEvent] = (),
        product_filter: ProductFilter = DEFAULT_FILTER,
    ) -> tuple[list[d.Candidate], list[d.Degradation], str]:
        """Candidates and degradations for the query as corrected (libs.index.spelling), and the corrected query
        ("" when no word needed it). `timeout`: the caller's remaining time; a slow or dead encoder gives
        lexical-only candidates, flagged. Only products `product_filter` admits: each index is searched deeper until
        its list holds PER_SOURCE of them, it is exhausted, or MAX_DEPTH. Without a narrowing filter the first depth
        suffices, as before."""
        degradations: list[d.Degradation] = []
        corrected = self.indexes.speller.correct(query) if self.correct_typos else ""
        searched = corrected or query
        dense_text = searched if self.dense_corrected else query
        emb = await encode_or_degrade(self.encode, [dense_text], timeout * ENCODER_SHARE, degradations)
        terms = analyse(searched)
        repeat: list[tuple[int, float]] = []
        if user_id:
            # Personal signal for search: the user's own past purchases that match a query term.
            bought = self._repeat(self.history(user_id, recent))
            repeat = [(i, s) for i, s in bought if self.indexes.terms[i].intersection(terms)]
        admits = self._admits(product_filter)
        depth = PER_SOURCE
        while True:
            found = {d.Source.LEXICAL: self.indexes.search_lexical(searched, depth)}
            if emb is not None:
                found[d.Source.DENSE] = self.indexes.search_dense(emb[0], depth)
            # Each source's list filtered before fusion, as if the index held only admitted products (sold-out ones
            # used to leave the indexes: the default filter fuses exactly what was fused then).
            lists = {source: self._only(ranked, admits, PER_SOURCE) for source, ranked in found.items()}
            short = [s for s, ranked in found.items() if len(lists[s]) < PER_SOURCE and len(ranked) == depth]
            if not short or depth >= MAX_DEPTH:
                break
            # Deeper, by the share admitted so far (at least DEEPEN times): usually one more search is enough.
            share = min(len(lists[s]) / depth for s in short)
            depth = min(MAX_DEPTH, max(depth * DEEPEN, int(PER_SOURCE / max(share, 1e-3) * 1.25)))
        if repeat:
            lists[d.Source.REPEAT_PURCHASE] = self._only(repeat, admits)
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
        product_filter: ProductFilter = DEFAULT_FILTER,
    ) -> tuple[list[d.Candidate], list[d.Degradation]]:
        """FOR_YOU: exactly the rankers' candidate pool (what they were trained and evaluated on), each part a
        source: own past items by decayed frequency, co-purchase neighbours, similar customers' products, popular
        items; plus up to NEW_PER_USER products newer than the bundle (dense). With `limit` >= POOL_MAX (the
        gateway's ask) nothing of the pool is cut unless it is full, when those may displace its weakest. Other
        shelves: their own candidates (libs.shelves); `context` = the context product ids (unknown ones contribute
        nothing). Every list holds only products `product_filter` admits (the context shelves' lists are read
        SHELF_OVERFETCH times deeper, filtered, then cut)."""
        admits = self._admits(product_filter)
        if shelf == d.Shelf.FREQUENTLY_BOUGHT_TOGETHER:
            limit = min(limit, shelves.FBT_CANDIDATES)
            together = shelves.frequently_bought_together(
                self.copurchase, shelves.context_items(self.item_index, context), limit * SHELF_OVERFETCH
            )
            return self._candidates(rrf({d.Source.CO_PURCHASE: self._only(together, admits)}), limit), []
        if shelf == d.Shelf.SIMILAR_ITEMS:
            limit = min(limit, shelves.SIMILAR_CANDIDATES)
            items = shelves.context_items(self.item_index, context)[:1]
            similar = []
            if items:
                near = self.indexes.search_dense(self.item_vectors[items[0]], limit * SHELF_OVERFETCH + 1)
                similar = [(i, s) for i, s in near if i != items[0]]
            return self._candidates(rrf({d.Source.DENSE: self._only(similar, admits)}), limit), []
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
        lists = {source: self._only(ranked, admits) for source, ranked in lists.items()}
        return self._candidates(rrf(lists), limit), []
