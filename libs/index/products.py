"""The products Search can find, kept in line with the living catalogue (libs.products) while serving.

Keys 0..n-1 are the bundle's items in its item order (so retrieval's features - popularity, the user's history -
line up with them); products newer than the bundle get the next keys as they arrive. In-stock and sold-out products
are in both indexes under their current title (retrieval's filter, libs.storefront, decides which may be served);
new or retitled ones are embedded by the text encoder (Triton) in batches, and their words join the typo
corrections' vocabulary (libs.index.spelling); discontinued ones are removed, and come back (re-embedded) when sold
again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

import numpy as np

from libs.errors import DeadlineError, UnavailableError
from libs.index import TextIndex, VectorIndex
from libs.index.dense import dense_index, normalised
from libs.index.lexical import TantivyIndex
from libs.domain import Availability
from libs.index.spelling import Speller
from libs.products.model import Product
from libs.products.view import CatalogView
from libs.relevance import analyse, analyse_many
from libs.scoring import EncodeQuery

log = logging.getLogger(__name__)

# Products the indexes hold: sold-out ones stay (a filter with include_out_of_stock asks for them; by default
# retrieval's filter leaves them out), discontinued ones leave.
INDEXED = frozenset({Availability.IN_STOCK, Availability.OUT_OF_STOCK})
EMBED_BATCH = 64  # titles per text-encoder call
RETRY_S = 1.0  # wait before retrying changes whose titles could not be embedded (encoder down or late)


class ProductIndexes:
    def __init__(
        self,
        product_ids: Sequence[str],
        titles: Sequence[str],
        vectors: np.ndarray,
        lexical: TextIndex | None = None,
        dense: VectorIndex | None = None,
    ) -> None:
        self.product_ids = list(product_ids)
        self.titles = list(titles)
        self.key_of = {p: k for k, p in enumerate(self.product_ids)}
        terms = analyse_many(self.titles)
        self.terms = [frozenset(t) for t in terms]
        self.live = set(range(len(self.product_ids)))  # keys in both indexes
        self.n_bundle = len(self.product_ids)
        self.newer: dict[int, np.ndarray] = {}  # live products newer than the bundle: their normalised vectors
        self.speller = Speller()  # the vocabulary of typo corrections, growing with new titles
        self.speller.add(self.titles, terms)
        self.lexical = lexical if lexical is not None else TantivyIndex()
        self.dense = dense if dense is not None else dense_index(np.shape(vectors)[1], len(self.product_ids))
        keys = list(range(len(self.product_ids)))
        self.lexical.upsert(keys, terms)
        self.dense.upsert(keys, vectors)

    def search_lexical(self, query: str, k: int) -> list[tuple[int, float]]:
        return self.lexical.search(analyse(query), k)

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        return self.dense.search(vector, k)

    def newer_like(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The products newer than the bundle nearest `vector`, by exact cosine (few between retrains)."""
        if not self.newer or k <= 0:
            return []
        keys = np.fromiter(self.newer, np.int64, len(self.newer))
        scores = np.stack(list(self.newer.values())) @ normalised(vector)[0]
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(keys[i]), float(scores[i])) for i in order]

    def _key(self, product_id: str, title: str) -> int:
        key = self.key_of.get(product_id)
        if key is None:
            key = self.key_of[product_id] = len(self.product_ids)
            self.product_ids.append(product_id)
            self.titles.append("")
            self.terms.append(frozenset())
        if self.titles[key] != title:
            self.speller.add([title])
        self.titles[key] = title
        self.terms[key] = frozenset(analyse(title))
        return key

    async def apply(self, products: Iterable[Product], encode: EncodeQuery, timeout_s: float) -> None:
        """Bring the indexes in line with these products (the last of several changes of one product wins).
        Removals first; then embedding, batch by batch, each batch visible in both indexes once embedded. Raises
        what `encode` raises (UnavailableError, DeadlineError, TimeoutError); applying again is harmless."""
        latest = {p.product_id: p.content for p in products}
        gone, embed = [], []
        for pid, content in latest.items():
            key = self.key_of.get(pid)
            if content.availability not in INDEXED:
                if key is not None and key in self.live:
                    gone.append(key)
            elif key is None or key not in self.live or self.titles[key] != content.title:
                embed.append((pid, content.title))
        if gone:
            self.lexical.remove(gone)
            self.dense.remove(gone)
            self.live.difference_update(gone)
            for key in gone:
                self.newer.pop(key, None)
        for start in range(0, len(embed), EMBED_BATCH):
            part = embed[start : start + EMBED_BATCH]
            vectors = await asyncio.wait_for(encode([t for _, t in part], timeout_s), timeout_s)
            keys = [self._key(pid, title) for pid, title in part]
            self.lexical.upsert(keys, [sorted(self.terms[k]) for k in keys])
            self.dense.upsert(keys, vectors)
            self.live.update(keys)
            self.newer.update((k, v) for k, v in zip(keys, normalised(vectors)) if k >= self.n_bundle)


class IndexFollower:
    """Applies the catalogue's changes, as a CatalogView reads them, to the serving ProductIndexes.

    `attach` installs a new bundle's indexes (built from the bundle's dataset) and queues the whole catalogue, so
    they catch up with every change since the dataset; only products that differ from it cost an embedding.
    """

    def __init__(self, view: CatalogView, timeout_s: float) -> None:
        self.view = view
        self.timeout_s = timeout_s
        self.indexes: ProductIndexes | None = None
        self.encode: EncodeQuery | None = None
        self.pending: dict[str, Product] = {}
        self.wake = asyncio.Event()
        view.listeners.append(self.queue)

    def queue(self, changes: Iterable[Product]) -> None:
        for p in changes:
            self.pending[p.product_id] = p
        self.wake.set()

    def attach(self, indexes: ProductIndexes, encode: EncodeQuery) -> None:
        self.indexes, self.encode = indexes, encode
        self.queue(self.view.products.values())

    async def run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            if self.indexes is None or not self.pending:
                continue
            indexes, batch = self.indexes, self.pending
            self.pending = {}
            try:
                await indexes.apply(batch.values(), self.encode, self.timeout_s)
            except (UnavailableError, DeadlineError, TimeoutError) as exc:
                log.warning("catalogue changes not indexed yet (%d products), retrying: %s", len(batch), exc)
                self.pending = batch | self.pending  # changes that arrived meanwhile are newer
                await asyncio.sleep(RETRY_S)
                self.wake.set()
