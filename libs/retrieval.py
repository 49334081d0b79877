"""Candidate generation. Query: BM25 (bm25s) + dense ANN (FAISS HNSW over title embeddings), fused by
reciprocal rank fusion. User: the rankers' candidate pool (libs.features.candidate_parts: own past items,
co-purchase neighbours of recent ones, recent popularity), ordered by reciprocal rank fusion of its parts, or a
shelf's own candidates (libs.shelves)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import bm25s
import faiss
import numpy as np
import scipy.sparse as sp

from libs import domain as d
from libs import shelves
from libs.features import FeatureStore, Pop, UserContext, candidate_parts
from libs.features import POOL_CO_PURCHASE, POOL_HISTORY, POOL_POPULAR, POOL_SIMILAR
from libs.history import user_context
from libs.relevance import STEMMER, analyse, analyse_many
from libs.scoring import EncodeQuery, encode_or_degrade

RRF_K = 60  # the constant of Cormack et al. (2009); insensitive in practice
PER_SOURCE = 200
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


class LexicalIndex:
    def __init__(self, titles: Sequence[str]) -> None:
        self.retriever = bm25s.BM25()
        self.retriever.index(
            bm25s.tokenize(list(titles), stopwords="en", stemmer=STEMMER, show_progress=False), show_progress=False
        )
        self.title_terms = [set(t) for t in analyse_many(titles)]  # one tokenizer pass, as the index
        self.n = len(titles)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=STEMMER, show_progress=False)
        if not tokens.vocab:
            return []
        docs, scores = self.retriever.retrieve(tokens, k=min(k, self.n), show_progress=False, n_threads=1)
        return [(int(i), float(s)) for i, s in zip(docs[0], scores[0]) if s > 0]


class VectorIndex:
    """HNSW over L2-normalised vectors: inner product = cosine.

    efConstruction 200 (faiss default 40) and efSearch 128: catalogues hold many near-identical variants (colours,
    sizes), where a graph built with the defaults misses exact neighbours (`make bench-scale`: recall@10 0.88 -> 0.99
    on a x10 catalogue) for ~0.1 ms more per query and a slower build at start-up."""

    def __init__(self, vectors: np.ndarray, m: int = 32, ef_search: int = 128, ef_construction: int = 200) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        faiss.normalize_L2(vectors)
        self.vectors = vectors
        self.index = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = ef_construction
        self.index.hnsw.efSearch = ef_search
        self.index.add(vectors)

    def search(self, query: np.ndarray, k: int, exclude: set[int] = frozenset()) -> list[tuple[int, float]]:
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        faiss.normalize_L2(q)
        scores, ids = self.index.search(q, min(k + len(exclude), self.index.ntotal))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0 and int(i) not in exclude][:k]


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
        self.product_ids = list(product_ids)
        self.titles = list(titles)
        self.lexical = LexicalIndex(titles)
        self.dense = VectorIndex(item_vectors)
        self.popularity = np.asarray(popularity, np.float64)
        self.parts = parts  # the user's candidate pool in parts (libs.features.candidate_parts)
        self.history = history
        self.encode = encode
        self.half_life_s = half_life_days * 86400.0
        self.copurchase = copurchase  # invoices shared by each pair of products (frequently bought together)
        self.item_index = {p: i for i, p in enumerate(self.product_ids)}

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
        out = []
        for item, score, ranks in fused[:limit]:
            matched = [t for t in terms if t in self.lexical.title_terms[item]]
            out.append(d.Candidate(self.product_ids[item], self.titles[item], score, ranks, matched))
        return out

    async def query_candidates(
        self, query: str, user_id: str, limit: int, timeout: float, recent: Sequence[d.UserEvent] = ()
    ) -> tuple[list[d.Candidate], list[d.Degradation]]:
        """`timeout`: the caller's remaining time; a slow or dead encoder gives lexical-only candidates, flagged."""
        degradations: list[d.Degradation] = []
        lists: dict[d.Source, list[tuple[int, float]]] = {d.Source.LEXICAL: self.lexical.search(query, PER_SOURCE)}
        emb = await encode_or_degrade(self.encode, [query], timeout * ENCODER_SHARE, degradations)
        if emb is not None:
            lists[d.Source.DENSE] = self.dense.search(emb[0], PER_SOURCE)
        terms = analyse(query)
        if user_id:
            # Personal signal for search: the user's own past purchases that match a query term.
            bought = self._repeat(self.history(user_id, recent))
            lists[d.Source.REPEAT_PURCHASE] = [
                (i, s) for i, s in bought if self.lexical.title_terms[i].intersection(terms)
            ]
        return self._candidates(rrf(lists), limit, terms), degradations

    def _repeat(self, h: UserContext, limit: int = PER_SOURCE) -> list[tuple[int, float]]:
        """User's items by time-decayed purchase frequency (TIFU-style), strongest first."""
        if len(h.items) == 0:
            return []
        age = h.now - h.ts
        weights = np.power(0.5, age / self.half_life_s)
        scores = np.bincount(h.items, weights=weights, minlength=len(self.product_ids))
        order = np.flatnonzero(scores)[np.argsort(-scores[np.flatnonzero(scores)], kind="stable")]
        return [(int(i), float(scores[i])) for i in order[:limit]]

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
        items; with `limit` >= POOL_MAX (the gateway's ask) nothing is cut. Other shelves: their own candidates
        (libs.shelves); `context` = the context product ids (unknown ones contribute nothing)."""
        if shelf == d.Shelf.FREQUENTLY_BOUGHT_TOGETHER:
            limit = min(limit, shelves.FBT_CANDIDATES)
            together = shelves.frequently_bought_together(
                self.copurchase, shelves.context_items(self.item_index, context), limit
            )
            return self._candidates(rrf({d.Source.CO_PURCHASE: together}), limit), []
        if shelf == d.Shelf.SIMILAR_ITEMS:
            limit = min(limit, shelves.SIMILAR_CANDIDATES)
            items = shelves.context_items(self.item_index, context)[:1]
            similar = self.dense.search(self.dense.vectors[items[0]], limit, exclude=set(items)) if items else []
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
        return self._candidates(rrf(lists), limit), []
