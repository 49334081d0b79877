"""Nearest neighbours with updates, by catalogue size (`dense_index`): usearch's HNSW, which (unlike FAISS's HNSW)
removes and replaces entries by key, and past IVF_FROM products FAISS's inverted lists (IVF-Flat), which do too.

`make bench-scale` (reports/scale.md) measured both on the catalogue enlarged x100 (378,000 products): HNSW's
recall@10 against exact search falls to 0.873 at expansion 256 (0.927 at 512, 1.4 ms), since the enlarged catalogue
is dense clusters of near-identical variants, where greedy graph search stops early; IVF scans whole cells, and with
16 of 2,459 cells probed kept 0.963 at 0.43 ms. Below IVF_FROM, HNSW stays: it was tuned and evaluated on the real
catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from usearch.index import Index

from libs.index import VectorIndex

IVF_FROM = 100_000  # products in the catalogue an index is built for, from which IVF serves


def normalised(vectors: np.ndarray) -> np.ndarray:
    v = np.array(vectors, dtype=np.float32, ndmin=2)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


class UsearchIndex:
    """HNSW over L2-normalised vectors, inner product = cosine.

    connectivity 32, expansion 200 on add and 256 on search: catalogues hold many near-identical variants (colours,
    sizes), where small settings miss exact neighbours (`make bench-scale`, recall@10 vs exact at x10: 0.978 with
    128 on search, 0.998 with 256, for ~0.2 ms more per query)."""

    def __init__(
        self, ndim: int, connectivity: int = 32, expansion_add: int = 200, expansion_search: int = 256
    ) -> None:
        self.index = Index(
            ndim=ndim,
            metric="ip",
            dtype="f32",
            connectivity=connectivity,
            expansion_add=expansion_add,
            expansion_search=expansion_search,
        )

    def upsert(self, keys: Sequence[int], vectors: np.ndarray) -> None:
        if len(keys) == 0:
            return
        ids = np.asarray(keys, np.uint64)
        self.remove(ids)
        self.index.add(ids, normalised(vectors), threads=1)

    def remove(self, keys: Sequence[int]) -> None:
        ids = np.asarray(keys, np.uint64)
        present = ids[np.asarray(self.index.contains(ids), bool).reshape(-1)] if len(ids) else ids
        if len(present):
            self.index.remove(present)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        if k <= 0 or len(self.index) == 0:
            return []
        found = self.index.search(normalised(vector)[0], min(k, len(self.index)))
        return [(int(key), 1.0 - float(dist)) for key, dist in zip(found.keys, found.distances)]

    def __len__(self) -> int:
        return len(self.index)


class FaissIVFIndex:
    """FAISS IVF-Flat over L2-normalised vectors, inner product = cosine; keys are FAISS ids.

    The coarse quantiser is trained on the first vectors upserted (the catalogue the index is built for): about
    4 * sqrt(n) cells, with at least 39 training vectors per cell as FAISS asks. Products upserted later join their
    nearest cell; a rebuild (a new bundle, a restart) trains again on the catalogue as it is then.
    """

    def __init__(self, ndim: int, nprobe: int = 16) -> None:
        import faiss

        self.ndim = ndim
        self.nprobe = nprobe
        self.index: faiss.IndexIVFFlat | None = None

    def _train(self, vectors: np.ndarray) -> None:
        import faiss

        n = len(vectors)
        nlist = max(1, min(int(4 * np.sqrt(n)), n // 39))
        quantiser = faiss.IndexFlatIP(self.ndim)
        index = faiss.IndexIVFFlat(quantiser, self.ndim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = min(self.nprobe, nlist)
        self._quantiser, self.index = quantiser, index  # the IVF index does not own its quantiser's Python object

    def upsert(self, keys: Sequence[int], vectors: np.ndarray) -> None:
        if len(keys) == 0:
            return
        v = normalised(vectors)
        if self.index is None:
            self._train(v)
        self.remove(keys)
        self.index.add_with_ids(v, np.asarray(keys, np.int64))

    def remove(self, keys: Sequence[int]) -> None:
        if self.index is not None and len(keys):
            self.index.remove_ids(np.asarray(keys, np.int64))

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        if k <= 0 or self.index is None or self.index.ntotal == 0:
            return []
        scores, keys = self.index.search(normalised(vector)[:1], min(k, self.index.ntotal))
        return [(int(key), float(score)) for key, score in zip(keys[0], scores[0]) if key >= 0]

    def __len__(self) -> int:
        return 0 if self.index is None else int(self.index.ntotal)


def dense_index(ndim: int, n_products: int) -> VectorIndex:
    """The engine for a catalogue of about `n_products` (see the module's docstring for why it changes)."""
    return FaissIVFIndex(ndim) if n_products >= IVF_FROM else UsearchIndex(ndim)
