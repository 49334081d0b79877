"""Searchable indexes that follow the catalogue: the interfaces the retrieval core uses, and their engines
(libs.index.lexical: tantivy BM25; libs.index.dense: usearch HNSW). Keys are non-negative ints the caller assigns;
upserting a key replaces its entry, so a search engine cluster (OpenSearch, Vespa) can stand behind the same
interfaces."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class TextIndex(Protocol):
    """BM25 over analysed terms (libs.relevance.analyse): the caller analyses, the index only scores."""

    def upsert(self, keys: Sequence[int], terms: Sequence[Sequence[str]]) -> None: ...
    def remove(self, keys: Sequence[int]) -> None: ...
    def search(self, terms: Sequence[str], k: int) -> list[tuple[int, float]]: ...
    def __len__(self) -> int: ...


class VectorIndex(Protocol):
    """Nearest neighbours by cosine similarity (vectors are L2-normalised on the way in)."""

    def upsert(self, keys: Sequence[int], vectors: np.ndarray) -> None: ...
    def remove(self, keys: Sequence[int]) -> None: ...
    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]: ...
    def __len__(self) -> int: ...
