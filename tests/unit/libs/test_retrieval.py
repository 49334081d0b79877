import asyncio
import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from libs import domain as d
from libs.errors import UnavailableError
from libs.features import POOL_MAX, UserContext, candidate_pool
from libs.products.model import ProductContent
from libs.domain import Availability, Money
from libs.retrieval import RetrievalCore, analyse, rrf
from libs.storefront import ProductFilter

TITLES = ["WHITE METAL LANTERN", "RED HEART T-LIGHT HOLDER", "GARDEN LANTERN SET", "BLUE TEA CUP", "PINK TEA CUP"]
IDS = ["71053", "84406B", "90001", "22000", "22001"]


def _vectors() -> np.ndarray:
    # Item 0 and 2 (lanterns) point the same way; the cups form another cluster.
    v = np.array([[1, 0.1, 0], [0, 1, 0.2], [0.9, 0.2, 0], [0, 0, 1], [0.1, 0, 1]], dtype=np.float32)
    return np.hstack([v, np.zeros((5, 5), dtype=np.float32)])


def _core(
    histories: dict[str, UserContext] | None = None, encoder_down: bool = False, encoder_delay_s: float = 0.0
) -> RetrievalCore:
    async def encode(texts, timeout):
        if encoder_down:
            raise UnavailableError("text_encoder: UNAVAILABLE")
        await asyncio.sleep(encoder_delay_s)
        return np.stack([_vectors()[0] if "lantern" in t.lower() else _vectors()[3] for t in texts])

    co = sp.csr_matrix(
        np.array(
            [[0, 0, 0, 3, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [3, 0, 0, 0, 1], [0, 0, 0, 1, 0]], dtype=np.float32
        )
    )
    empty = UserContext.empty(100.0)
    popularity = np.array([1.0, 5.0, 0.0, 2.0, 4.0])

    def parts(ctx: UserContext) -> list[tuple[str, np.ndarray]]:  # candidate_parts' shape, over the toy data
        own = pd.unique(ctx.items[::-1])
        neighbours = np.flatnonzero(np.asarray(co[own].sum(axis=0)).ravel()) if len(own) else np.zeros(0, int)
        similar = np.setdiff1d([2], own)  # what "similar customers" buy: the garden lantern set
        return ([("history", own), ("co_purchase", neighbours), ("similar_customers", similar)] if len(own) else []) + [
            ("popular", np.argsort(-popularity, kind="stable"))
        ]

    return RetrievalCore(
        IDS, TITLES, _vectors(), popularity, parts, lambda user, recent: (histories or {}).get(user, empty), encode, co
    )


def test_rrf_sums_reciprocal_ranks_and_breaks_ties_by_index():
    fused = rrf({d.Source.LEXICAL: [(3, 9.0), (1, 5.0)], d.Source.DENSE: [(1, 0.9), (2, 0.8)]}, k=60)
    assert [i for i, _, _ in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert [s.source for s in fused[0][2]] == [d.Source.LEXICAL, d.Source.DENSE]
    assert rrf({}) == []


def test_analyse_stems_and_drops_stop_words():
    assert analyse("The Lanterns of the garden") == ["lantern", "garden"]


async def test_query_candidates_fuse_lexical_and_dense_with_matched_terms():
    cands, degradations, corrected = await _core().query_candidates("lanterns", "", 10, 1.0)
    assert degradations == [] and corrected == ""  # "lanterns" is "lantern": no typo
    assert {c.product_id for c in cands[:2]} == {"71053", "90001"}
    top = cands[0]
    assert top.matched_terms == ["lantern"]
    assert {s.source for s in top.source_ranks} == {d.Source.LEXICAL, d.Source.DENSE}


async def test_encoder_outage_degrades_to_lexical_only():
    cands, degradations, _ = await _core(encoder_down=True).query_candidates("tea cup", "", 10, 1.0)
    assert [x.stage for x in degradations] == [d.Stage.TEXT_ENCODER]
    assert {c.product_id for c in cands} == {"22000", "22001"}
    assert all(s.source is d.Source.LEXICAL for c in cands for s in c.source_ranks)


async def test_slow_encoder_degrades_to_lexical_within_the_callers_time():
    core = _core(encoder_delay_s=5.0)
    start = time.monotonic()
    cands, degradations, _ = await core.query_candidates("tea cup", "", 10, 0.2)
    assert time.monotonic() - start < 0.2
    assert [x.stage for x in degradations] == [d.Stage.TEXT_ENCODER]
    assert {c.product_id for c in cands} == {"22000", "22001"}


async def test_user_candidates_record_every_source():
    history = UserContext(np.array([0, 0, 3]), np.array([0.0, 10.0, 20.0]), np.array([0, 1, 2]), 30.0)
    cands, _ = await _core({"1": history}).user_candidates("1", [], 10)
    by_id = {c.product_id: {s.source for s in c.source_ranks} for c in cands}
    assert d.Source.REPEAT_PURCHASE in by_id["71053"] and d.Source.REPEAT_PURCHASE in by_id["22000"]
    assert d.Source.CO_PURCHASE in by_id["22001"]  # bought with the cup
    assert d.Source.POPULARITY in by_id["84406B"]
    assert d.Source.SIMILAR_CUSTOMERS in by_id["90001"]  # never bought, bought by similar customers
    # Repeat purchases in decayed-frequency order: the lantern, bought twice, before the cup.
    repeat = {c.product_id: r.rank for c in cands for r in c.source_ranks if r.source is d.Source.REPEAT_PURCHASE}
    assert repeat == {"71053": 1, "22000": 2}


async def test_unknown_user_gets_popularity():
    cands, _ = await _core().user_candidates("999", [], 3)
    assert [c.product_id for c in cands] == ["84406B", "22001", "22000"]


async def test_personal_search_adds_matching_repeat_purchases():
    history = UserContext(np.array([2, 3]), np.array([0.0, 1.0]), np.array([0, 1]), 2.0)
    cands, _, _ = await _core({"1": history}).query_candidates("lantern", "1", 10, 1.0)
    garden = next(c for c in cands if c.product_id == "90001")
    assert d.Source.REPEAT_PURCHASE in {s.source for s in garden.source_ranks}
    assert all(
        d.Source.REPEAT_PURCHASE not in {s.source for s in c.source_ranks} for c in cands if c.product_id == "22000"
    )


async def test_over_store_reads_the_feature_stores_data():
    from tests.unit import fakes

    store = fakes.store()
    core = RetrievalCore.over_store(store, fakes.PRODUCTS, fakes.TITLES, fakes.encode)
    assert len(core.indexes.dense) == len(core.indexes.lexical) == len(store.item_emb)
    cands, _ = await core.user_candidates("1", [], 10)
    assert "A" in {c.product_id for c in cands}  # user 1's own past purchase, from the store's history


async def test_user_candidates_are_the_rankers_candidate_pool_uncut():
    """Recommend ranks exactly the pool the rankers were trained and `make eval` scored (libs.features)."""
    from tests.unit import fakes

    store = fakes.store()
    core = RetrievalCore.over_store(store, fakes.PRODUCTS, fakes.TITLES, fakes.encode)
    for user in ["1", "2", "never-seen"]:
        cands, _ = await core.user_candidates(user, [], POOL_MAX)
        pool = candidate_pool(store, store.user_context(user))
        assert sorted(store.item_index.get_indexer([c.product_id for c in cands])) == sorted(pool.tolist())


async def test_recommend_adds_products_newer_than_the_bundle_like_the_users_latest_purchases():
    from libs.domain import Availability, Money
    from libs.products.model import Product, ProductContent

    core = _core({"1": UserContext(np.array([3]), np.array([0.0]), np.array([0]), 1.0)})  # bought the blue cup

    def new(pid: str, title: str) -> Product:
        return Product(ProductContent(pid, title, Money("GBP", 1, 0), Availability.IN_STOCK), 0.0, 0.0, 1)

    await core.indexes.apply([new("N1", "GREEN TEA CUP"), new("N2", "PAPER LANTERN")], core.encode, 1.0)
    cands, _ = await core.user_candidates("1", [], POOL_MAX)
    dense = {c.product_id: r.rank for c in cands for r in c.source_ranks if r.source is d.Source.DENSE}
    assert dense == {"N1": 1, "N2": 2}  # the cup-like one first (the toy encoder: cups vs lanterns)
    anonymous, _ = await core.user_candidates("999", [], POOL_MAX)
    assert not {"N1", "N2"} & {c.product_id for c in anonymous}  # no purchases: nothing to be like


async def test_buy_again_shelf_is_only_the_users_own_products():
    history = UserContext(np.array([0, 0, 3]), np.array([0.0, 10.0, 20.0]), np.array([0, 1, 2]), 30.0)
    cands, _ = await _core({"1": history}).user_candidates("1", [], 10, d.Shelf.BUY_AGAIN)
    assert {c.product_id for c in cands} == {"71053", "22000"}  # the pool's other parts add nothing unbought
    assert all(d.Source.REPEAT_PURCHASE in {s.source for s in c.source_ranks} for c in cands)


async def test_discover_shelf_is_the_pool_without_anything_bought():
    history = UserContext(np.array([0, 0, 3]), np.array([0.0, 10.0, 20.0]), np.array([0, 1, 2]), 30.0)
    cands, _ = await _core({"1": history}).user_candidates("1", [], 10, d.Shelf.DISCOVER)
    ids = {c.product_id for c in cands}
    assert ids == {"84406B", "90001", "22001"}  # popular, similar customers', co-purchase; never 71053 or 22000
    assert d.Source.REPEAT_PURCHASE not in {s.source for c in cands for s in c.source_ranks}


async def test_frequently_bought_together_shelf_ranks_co_purchases_of_the_context():
    cands, _ = await _core().user_candidates("", [], 10, d.Shelf.FREQUENTLY_BOUGHT_TOGETHER, ["22000", "unknown"])
    assert [c.product_id for c in cands] == ["71053", "22001"]  # 3 shared invoices, then 1; never the cup itself
    assert [c.source_ranks[0].score for c in cands] == [3.0, 1.0]
    cands, _ = await _core().user_candidates("", [], 10, d.Shelf.FREQUENTLY_BOUGHT_TOGETHER, ["unknown"])
    assert cands == []


async def test_similar_items_shelf_is_the_nearest_titles_without_the_product():
    cands, _ = await _core().user_candidates("", [], 2, d.Shelf.SIMILAR_ITEMS, ["71053"])
    assert [c.product_id for c in cands][0] == "90001"  # the other lantern
    assert "71053" not in {c.product_id for c in cands}
    assert {s.source for c in cands for s in c.source_ranks} == {d.Source.DENSE}


def _catalogue_core(n: int = 1000) -> RetrievalCore:
    """n lanterns; every 10th costs 0.50 GBP (the rest 5 GBP), P1 is sold out, P2 discontinued."""
    rng = np.random.default_rng(7)
    ids = [f"P{i}" for i in range(n)]

    def content(pid: str) -> ProductContent:
        i = int(pid[1:])
        availability = {1: Availability.OUT_OF_STOCK, 2: Availability.DISCONTINUED}.get(i, Availability.IN_STOCK)
        price = Money("GBP", 0, 500_000_000) if i % 10 == 0 else Money("GBP", 5)
        return ProductContent(pid, f"LANTERN {i}", price, availability)

    query = rng.normal(size=8).astype(np.float32)

    async def encode(texts, timeout):
        return np.stack([query] * len(texts))

    return RetrievalCore(
        ids,
        [f"LANTERN {i}" for i in range(n)],
        rng.normal(size=(n, 8)).astype(np.float32),
        np.zeros(n),
        lambda ctx: [],
        lambda user, recent: UserContext.empty(100.0),
        encode,
        sp.csr_matrix((n, n), dtype=np.float32),
        product=content,
    )


async def test_a_filter_is_applied_before_the_cut_searching_deeper_until_enough_match():
    core = _catalogue_core()
    cheap = ProductFilter(max_price=Money("GBP", 1))
    found, _, _ = await core.query_candidates("lantern", "", 200, 1.0, product_filter=cheap)
    # 100 of 1,000 products match and the first 200 of each index hold ~40 of them: all 100 come back
    assert sorted(c.product_id for c in found) == sorted(f"P{i}" for i in range(0, 1000, 10))
    few, _, _ = await core.query_candidates("lantern", "", 30, 1.0, product_filter=cheap)
    assert len(few) == 30 and {c.product_id for c in few} < {c.product_id for c in found}


async def test_sold_out_products_are_candidates_only_when_asked_and_discontinued_never():
    core = _catalogue_core(150)  # fewer than one source's list: every admitted product is a candidate
    default, _, _ = await core.query_candidates("lantern", "", 1000, 1.0)
    asked, _, _ = await core.query_candidates(
        "lantern", "", 1000, 1.0, product_filter=ProductFilter(include_out_of_stock=True)
    )
    assert {c.product_id for c in asked} - {c.product_id for c in default} == {"P1"}
    assert "P2" not in {c.product_id for c in asked} and len(asked) == 149
    excluded, _ = await core.user_candidates(
        "", [], POOL_MAX, product_filter=ProductFilter(exclude_product_ids=frozenset({"P0"}))
    )
    assert "P0" not in {c.product_id for c in excluded}


async def test_a_typo_is_searched_as_corrected_on_both_sides():
    core = _core()
    seen = []
    encode = core.encode

    async def spy(texts, timeout):
        seen.extend(texts)
        return await encode(texts, timeout)

    core.encode = spy
    cands, _, corrected = await core.query_candidates("garden lanter", "", 10, 1.0)
    assert corrected == "garden lantern" and seen == ["garden lantern"]
    matched = {c.product_id: c.matched_terms for c in cands}
    assert matched["90001"] == ["garden", "lantern"] and matched["71053"] == ["lantern"]
    core.dense_corrected = False  # the alternative measured by make eval: the encoder reads the typed query
    await core.query_candidates("garden lanter", "", 10, 1.0)
    assert seen[-1] == "garden lanter"
    core.correct_typos = False
    cands, _, corrected = await core.query_candidates("garden lanter", "", 10, 1.0)
    assert corrected == "" and all(c.matched_terms in ([], ["garden"]) for c in cands)
