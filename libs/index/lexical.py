"""BM25 with updates: tantivy (Lucene's scoring and block-max WAND, deletes, segment merges in the background).

Documents are the already analysed terms joined by spaces and split again by tantivy's whitespace tokenizer, so the
index holds exactly the terms of libs.relevance.analyse - the analysis that ranking, explanation and the evaluation
share. Queries are built as term queries (no query syntax), so nothing a shopper types can be a parse error.
"""

from __future__ import annotations

from collections.abc import Sequence

import tantivy

KEY, TERMS = "key", "terms"
WRITER_HEAP = 15_000_000  # bytes; tantivy's minimum per indexing thread


class TantivyIndex:
    """A RAM index. Writes become visible when `upsert`/`remove` return (one commit each): call them with batches."""

    def __init__(self) -> None:
        builder = tantivy.SchemaBuilder()
        builder.add_unsigned_field(KEY, stored=False, indexed=True, fast=True)
        # Term frequencies without positions: BM25 needs no more.
        builder.add_text_field(TERMS, stored=False, tokenizer_name="whitespace", index_option="freq")
        self.schema = builder.build()
        self.index = tantivy.Index(self.schema)
        self.writer = self.index.writer(WRITER_HEAP, 1)
        self.searcher = self.index.searcher()

    def _delete(self, keys: Sequence[int]) -> None:
        for key in keys:
            self.writer.delete_documents_by_query(tantivy.Query.term_query(self.schema, KEY, int(key)))

    def _commit(self) -> None:
        self.writer.commit()
        self.index.reload()
        self.searcher = self.index.searcher()

    def upsert(self, keys: Sequence[int], terms: Sequence[Sequence[str]]) -> None:
        self._delete(keys)
        for key, words in zip(keys, terms):
            doc = tantivy.Document()
            doc.add_unsigned(KEY, int(key))
            doc.add_text(TERMS, " ".join(words))
            self.writer.add_document(doc)
        self._commit()

    def remove(self, keys: Sequence[int]) -> None:
        self._delete(keys)
        self._commit()

    def search(self, terms: Sequence[str], k: int) -> list[tuple[int, float]]:
        terms = list(dict.fromkeys(terms))
        if not terms or k <= 0:
            return []
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(self.schema, TERMS, t)) for t in terms]
        )
        searcher = self.searcher  # one snapshot for the hits and their keys
        hits = searcher.search(query, k).hits
        keys = searcher.fast_field_values(KEY, [address for _, address in hits])
        return [(int(key), float(score)) for (score, _), key in zip(hits, keys)]

    def __len__(self) -> int:
        return self.searcher.num_docs
