"""The incremental indexes (tantivy, usearch, FAISS IVF) and ProductIndexes applying catalogue changes. Real
engines; the text encoder is a function of the title (its Triton form is exercised by the integration tests)."""

from __future__ import annotations

import asyncio
import zlib

import numpy as np
import pytest

from libs.domain import Availability, Money
from libs.errors import UnavailableError
from libs.index.dense import IVF_FROM, FaissIVFIndex, UsearchIndex, dense_index, normalised
from libs.index.lexical import TantivyIndex
from libs.index.products import IndexFollower, ProductIndexes
from libs.products.model import Product, ProductContent
from libs.relevance import analyse

DIM = 8


def _vector(title: str) -> np.ndarray:
    """Titles sharing their first word point the same way."""
    rng = np.random.default_rng(zlib.crc32(title.split()[0].encode()))
    return rng.normal(size=DIM).astype(np.float32)


async def _encode(texts, timeout):
    return np.stack([_vector(t) for t in texts])


def _product(pid: str, title: str, availability: Availability = Availability.IN_STOCK, seq: int = 1) -> Product:
    return Product(ProductContent(pid, title, Money("GBP", 1, 0), availability), 0.0, 0.0, seq)


def _indexes() -> ProductIndexes:
    titles = ["WHITE METAL LANTERN", "BLUE TEA CUP", "PINK TEA CUP"]
    return ProductIndexes(["1", "2", "3"], titles, np.stack([_vector(t) for t in titles]))


def test_tantivy_scores_bm25_replaces_and_removes_by_key():
    index = TantivyIndex()
    index.upsert([0, 1, 2], [analyse("tea cup"), analyse("tea pot"), analyse("lantern")])
    hits = index.search(analyse("tea cups"), 10)
    assert [k for k, _ in hits] == [0, 1] and hits[0][1] > hits[1][1] > 0
    index.upsert([1], [analyse("lantern cup")])  # replaces key 1's terms
    assert {k for k, _ in index.search(["pot"], 10)} == set()
    assert {k for k, _ in index.search(["lantern"], 10)} == {1, 2}
    index.remove([2])
    assert [k for k, _ in index.search(["lantern"], 10)] == [1]
    assert len(index) == 2
    assert index.search([], 10) == [] and index.search(["nothing"], 10) == []


@pytest.mark.parametrize("engine", [UsearchIndex, FaissIVFIndex])
def test_dense_engines_find_neighbours_replace_and_remove_by_key(engine):
    index = engine(DIM)
    assert index.search(np.ones(DIM), 3) == [] and len(index) == 0
    vectors = np.eye(DIM, dtype=np.float32)[:3]
    index.upsert([10, 11, 12], vectors * 3)  # normalised on the way in: cosine
    found = index.search(vectors[1], 2)
    assert found[0][0] == 11 and found[0][1] == pytest.approx(1.0, abs=1e-5)
    index.upsert([11], vectors[2:3])
    assert {k for k, _ in index.search(vectors[2], 2)} == {11, 12}
    index.remove([12, 99])  # unknown keys are ignored
    assert len(index) == 2 and [k for k, _ in index.search(vectors[2], 5)][0] == 11


def test_ivf_recall_on_clustered_vectors_and_products_added_after_training():
    """Clusters of near-identical variants (what defeats HNSW at scale): IVF still finds the exact top 10, also
    for vectors added after its cells were trained."""
    rng = np.random.default_rng(0)
    centres = normalised(rng.normal(size=(100, 32)))
    vectors = normalised(np.repeat(centres, 60, axis=0) + rng.normal(scale=0.05, size=(6000, 32)))
    index = FaissIVFIndex(32)
    index.upsert(list(range(4000)), vectors[:4000])
    index.upsert(list(range(4000, 6000)), vectors[4000:])
    queries = normalised(centres[:20] + rng.normal(scale=0.05, size=(20, 32)))
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    recall = np.mean([len({k for k, _ in index.search(q, 10)} & set(e)) / 10 for q, e in zip(queries, exact)])
    assert recall >= 0.95 and len(index) == 6000


def test_dense_index_picks_ivf_for_large_catalogues():
    assert isinstance(dense_index(DIM, IVF_FROM - 1), UsearchIndex)
    assert isinstance(dense_index(DIM, IVF_FROM), FaissIVFIndex)


async def test_new_product_is_found_by_title_words_and_by_meaning():
    ix = _indexes()
    await ix.apply([_product("9", "GREEN TEA CUP SET")], _encode, 1.0)
    key = ix.key_of["9"]
    assert key == 3 and ix.titles[key] == "GREEN TEA CUP SET"
    assert key in {k for k, _ in ix.search_lexical("green", 10)}
    assert ix.search_dense(_vector("GREEN"), 1)[0][0] == key


async def test_new_title_words_join_the_typo_vocabulary_as_they_are_indexed():
    ix = _indexes()
    assert ix.speller.correct("porcelan cup") == ""  # no title has a word near it yet
    await ix.apply([_product("9", "PORCELAIN TEA CUP")], _encode, 1.0)
    assert ix.speller.correct("porcelan cup") == "porcelain cup"
    assert ix.search_lexical(ix.speller.correct("porcelan cup"), 10)[0][0] == ix.key_of["9"]


async def test_discontinued_products_leave_both_indexes_and_come_back_sold_out_ones_stay():
    """Sold-out products stay searchable (retrieval's filter serves them only when asked, libs.storefront)."""
    ix = _indexes()
    await ix.apply([_product("2", "BLUE TEA CUP", Availability.OUT_OF_STOCK)], _encode, 1.0)
    assert [k for k, _ in ix.search_lexical("blue", 10)] == [1]
    await ix.apply([_product("2", "BLUE TEA CUP", Availability.DISCONTINUED, seq=2)], _encode, 1.0)
    assert 1 not in {k for k, _ in ix.search_lexical("blue", 10)}
    assert 1 not in {k for k, _ in ix.search_dense(_vector("BLUE"), 3)}
    await ix.apply([_product("2", "BLUE TEA CUP", seq=3)], _encode, 1.0)
    assert [k for k, _ in ix.search_lexical("blue", 10)] == [1]


async def test_retitled_product_is_found_by_its_new_title_only():
    ix = _indexes()
    await ix.apply([_product("1", "PAPER LANTERN"), _product("1", "ZINC LANTERN", seq=2)], _encode, 1.0)
    assert ix.titles[0] == "ZINC LANTERN" and ix.terms[0] == frozenset({"zinc", "lantern"})
    assert [k for k, _ in ix.search_lexical("zinc", 10)] == [0]
    assert ix.search_lexical("white", 10) == []


async def test_price_change_needs_no_embedding():
    async def down(texts, timeout):
        raise UnavailableError("text_encoder: UNAVAILABLE")

    ix = _indexes()
    await ix.apply([_product("1", "WHITE METAL LANTERN")], down, 1.0)  # same title: nothing to embed
    with pytest.raises(UnavailableError):
        await ix.apply([_product("9", "NEW LANTERN")], down, 1.0)
    assert "9" not in ix.key_of  # nothing half-applied


class _View:
    def __init__(self, products):
        self.products = {p.product_id: p for p in products}
        self.listeners = []


async def test_follower_catches_up_on_attach_and_retries_while_the_encoder_is_down():
    view = _View([_product("9", "GREEN TEA CUP SET")])
    follower = IndexFollower(view, 1.0)
    calls = []

    async def flaky(texts, timeout):
        calls.append(list(texts))
        if len(calls) == 1:
            raise UnavailableError("text_encoder: UNAVAILABLE")
        return await _encode(texts, timeout)

    ix = _indexes()
    follower.attach(ix, flaky)  # a new bundle's indexes: the whole catalogue is queued
    task = asyncio.create_task(follower.run())
    try:
        view.listeners[0]([_product("10", "RED LANTERN", seq=2)])  # what the view calls as it reads changes
        for _ in range(40):
            await asyncio.sleep(0.1)
            if "10" in ix.key_of and "9" in ix.key_of:
                break
        assert {k for k, _ in ix.search_lexical("green", 5)} == {ix.key_of["9"]}
        assert len(calls) >= 2  # retried after the failure
    finally:
        task.cancel()
