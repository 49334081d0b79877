"""GatewayCore with in-memory fakes of its ports (pure orchestration logic, no processes)."""

import asyncio
import time

import pytest

from libs import domain as d
from libs.errors import (
    AlreadyExistsError,
    DeadlineError,
    FailedPreconditionError,
    InvalidArgumentError,
    UnavailableError,
)
from libs.events import SqliteEventStore
from libs.products.model import Product, ProductContent
from libs.gateway import Budget, GatewayCore, Recorded
from libs.stages import StageResult
from libs.experiments import Variants
from libs.on_demand import RESPONSE_NOT_KEPT
from libs.storefront import Browse, OrderBy, ProductFilter


def _cands(n: int, unmatched: int = 0) -> list[d.Candidate]:
    return [
        d.Candidate(
            f"P{i}",
            f"TITLE {i}",
            1.0 / (i + 1),
            [d.SourceRank(d.Source.LEXICAL, i + 1, 1.0)],
            [] if i < unmatched else ["title"],
        )
        for i in range(n)
    ]


class FakeRetrieval:
    def __init__(self, fail: Exception | None = None, found: int = 30) -> None:
        self.fail = fail
        self.found = found
        self.seen_recent = None

    async def query_candidates(self, query, user_id, limit, timeout, product_filter=None):
        self.seen_filter = product_filter
        if self.fail:
            raise self.fail
        return StageResult(_cands(self.found), [d.Degradation(d.Stage.TEXT_ENCODER, "down")] if not self.found else [])

    async def user_candidates(
        self, user_id, recent, limit, timeout, shelf=d.Shelf.FOR_YOU, context=(), product_filter=None
    ):
        self.seen_recent = list(recent)
        self.seen_shelf = (shelf, list(context))
        return StageResult(_cands(30))


class FakeRanking:
    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.queries = []

    async def rank(self, user_id, query, candidates, page_size, variant, recent, timeout):
        self.queries.append(query)
        if self.fail:
            raise self.fail
        items = [d.ScoredItem(c.product_id, c.title, float(i), {"fused": float(i)}) for i, c in enumerate(candidates)]
        items.reverse()
        return StageResult(items, [], [d.ModelVersion("gnn_ranker", "1")])


class FakeExplainer:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    async def explain(
        self,
        user_id,
        query,
        product_ids,
        variant,
        recent,
        timeout,
        bundle_id="",
        all_evidence=False,
        shelf=None,
        context=(),
    ):
        if self.delay > timeout:
            await asyncio.sleep(timeout)
            raise DeadlineError("explanation: deadline exceeded")
        return StageResult([d.Explanation([], f"why {p}", 0.5) for p in product_ids])


@pytest.fixture
def store(tmp_path):
    s = SqliteEventStore(tmp_path / "events.sqlite3")
    yield s
    s.close()


class FakeCatalog:
    """The catalogue view: P0..P29 in stock at 1.50 GBP, with `sold_out` OUT_OF_STOCK."""

    def __init__(self, sold_out: set[str] = frozenset()) -> None:
        self.stale = False
        self.products = {
            f"P{i}": Product(
                ProductContent(
                    f"P{i}",
                    f"TITLE {i}",
                    d.Money("GBP", 1, 500_000_000),
                    d.Availability.OUT_OF_STOCK if f"P{i}" in sold_out else d.Availability.IN_STOCK,
                ),
                0.0,
                0.0,
                i + 1,
            )
            for i in range(30)
        }

    def get(self, product_id):
        return self.products.get(product_id)

    async def unknown(self, product_ids):
        return [p for p in dict.fromkeys(product_ids) if p not in self.products]


def _core(store, retrieval=None, ranking=None, explainer=None, variants="fused:1", catalog=None):
    return GatewayCore(
        retrieval or FakeRetrieval(),
        ranking or FakeRanking(),
        explainer or FakeExplainer(),
        store,
        Variants.parse(variants),
        catalog or FakeCatalog(),
    )


def _counts(recorded: Recorded) -> tuple[int, int]:
    return recorded.accepted, recorded.duplicates


def _budget(seconds: float = 1.0) -> Budget:
    return Budget(time.monotonic() + seconds)


async def test_search_ranks_pages_and_explains(store):
    page = await _core(store).search("lantern", "17850", 5, True, _budget())
    assert [i.product_id for i in page.items] == ["P29", "P28", "P27", "P26", "P25"]
    assert all(i.explanation.sentence == f"why {i.product_id}" for i in page.items)
    assert page.degradations == [] and page.variant == "fused" and page.attribution_token
    assert page.versions == [d.ModelVersion("gnn_ranker", "1")]


async def test_a_corrected_typo_is_ranked_explained_and_said(store):
    class Corrected(FakeRetrieval):
        async def query_candidates(self, query, user_id, limit, timeout, product_filter=None):
            found = await super().query_candidates(query, user_id, limit, timeout, product_filter)
            found.corrected_query = "christmas lantern"
            return found

    ranking = FakeRanking()
    core = _core(store, retrieval=Corrected(), ranking=ranking)
    page = await core.search("chrismas lanter", "", 3, True, _budget())
    assert page.corrected_query == "christmas lantern" and ranking.queries == ["christmas lantern"]
    assert [i.explanation.sentence for i in page.items] == [
        f'Showing results for "christmas lantern". why {i.product_id}' for i in page.items
    ]
    later = await core.search("chrismas lanter", "", 3, True, _budget(), Browse(page_token=page.next_page_token))
    assert later.corrected_query == "christmas lantern" and later.items[0].explanation.sentence.startswith("Showing")
    page = await _core(store, ranking=ranking).search("lantern", "", 3, True, _budget())
    assert page.corrected_query == "" and page.items[0].explanation.sentence == "why P29"


async def test_ranking_outage_degrades_to_retrieval_order(store):
    page = await _core(store, ranking=FakeRanking(UnavailableError("ranking: UNAVAILABLE"))).search(
        "lantern", "", 3, False, _budget()
    )
    assert [i.product_id for i in page.items] == ["P0", "P1", "P2"]
    assert [x.stage for x in page.degradations] == [d.Stage.RANKING]
    assert page.items[0].sources == [d.Source.LEXICAL]


async def test_late_explanations_are_dropped_not_fatal(store):
    page = await _core(store, explainer=FakeExplainer(delay=10)).search("lantern", "", 3, True, _budget(0.3))
    assert len(page.items) == 3 and all(i.explanation is None for i in page.items)
    assert [x.stage for x in page.degradations] == [d.Stage.EXPLANATION]


async def test_no_candidates_is_an_ok_empty_page_without_calling_ranking(store):
    page = await _core(
        store, retrieval=FakeRetrieval(found=0), ranking=FakeRanking(AssertionError("ranking must not be called"))
    ).search("zzqx", "17850", 5, True, _budget())
    assert page.items == [] and page.attribution_token
    assert [x.stage for x in page.degradations] == [d.Stage.TEXT_ENCODER]


def test_inner_rejections_are_outages_not_the_callers_fault():
    import grpc

    from services.gateway.clients import _domain_error

    def rpc_error(code):
        return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "details")

    assert isinstance(_domain_error(rpc_error(grpc.StatusCode.INVALID_ARGUMENT), "ranking"), UnavailableError)
    assert isinstance(_domain_error(rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED), "ranking"), UnavailableError)
    assert isinstance(_domain_error(rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED), "ranking"), DeadlineError)


async def test_retrieval_outage_is_unavailable(store):
    with pytest.raises(UnavailableError):
        await _core(store, retrieval=FakeRetrieval(UnavailableError("retrieval: UNAVAILABLE"))).search(
            "lantern", "", 3, False, _budget()
        )


async def test_exhausted_deadline_is_deadline_exceeded(store):
    with pytest.raises(DeadlineError):
        await _core(store).search("lantern", "", 3, False, Budget(time.monotonic() - 1))


async def test_recorded_purchase_reaches_the_next_recommend(store):
    retrieval = FakeRetrieval()
    core = _core(store, retrieval=retrieval)
    token = core.tokens.issue("fused")
    event = d.UserEvent("P7", d.EventKind.PURCHASE, 123.0, 2)
    assert _counts(await core.record_events([("e1", "17850", token, event)])) == (1, 0)
    assert _counts(await core.record_events([("e1", "17850", token, event), ("e1", "17850", token, event)])) == (0, 2)
    await core.recommend("17850", 5, False, _budget())
    assert retrieval.seen_recent == [event]
    assert store.read_purchases() == [("17850", "P7", 123.0, 2, "fused")]


async def test_event_for_a_product_the_catalogue_lacks_is_stored_and_reported_unjoined(store):
    catalog = FakeCatalog()
    core = _core(store, catalog=catalog)
    buy_new = d.UserEvent("NEW1", d.EventKind.PURCHASE, 100.0, 1)
    buy_known = d.UserEvent("P1", d.EventKind.PURCHASE, 101.0, 1)
    recorded = await core.record_events(
        [("e1", "17850", "", buy_new), ("e2", "17850", "", buy_known), ("e3", "17850", "", buy_new)]
    )
    assert recorded == Recorded(3, 0, 2, ["NEW1"])
    assert sorted(p for _, p, *_ in store.read_purchases()) == ["NEW1", "NEW1", "P1"]
    catalog.products["NEW1"] = Product(
        ProductContent("NEW1", "NEW", d.Money("GBP", 2), d.Availability.IN_STOCK), 0.0, 0.0, 99
    )
    assert await core.record_events([("e1", "17850", "", buy_new)]) == Recorded(0, 1, 0, [])


async def test_sold_out_products_are_not_served_and_results_carry_price_and_availability(store):
    sold_out = {"P29", "P27", "P3"}
    core = _core(store, catalog=FakeCatalog(sold_out))
    for page in (
        await core.search("lantern", "17850", 5, False, _budget()),
        await core.recommend("17850", 5, False, _budget()),
    ):
        # Filtered before ranking: the page is still full.
        assert [i.product_id for i in page.items] == ["P28", "P26", "P25", "P24", "P23"]
        assert all(
            i.price == d.Money("GBP", 1, 500_000_000) and i.availability is d.Availability.IN_STOCK for i in page.items
        )
    # With the catalogue's database down, the last read view still filters, flagged.
    core.catalog.stale = True
    page = await core.search("lantern", "17850", 5, False, _budget())
    assert [i.product_id for i in page.items][:2] == ["P28", "P26"]
    assert [x.stage for x in page.degradations] == [d.Stage.CATALOG]
    # A product the catalogue has no row for is served as before, without price or availability.
    unknown = _core(store, catalog=FakeCatalog(), retrieval=FakeRetrieval(found=40))
    page = await unknown.search("lantern", "", 3, False, _budget())
    assert [(i.product_id, i.price, i.availability) for i in page.items] == [
        ("P39", None, None),
        ("P38", None, None),
        ("P37", None, None),
    ]


async def test_record_events_names_every_bad_field_and_stores_nothing(store):
    good = d.UserEvent("P1", d.EventKind.CLICK, 1.0, 1)
    with pytest.raises(InvalidArgumentError) as info:
        await _core(store).record_events(
            [
                ("", "17850", "", good),
                ("e2", "17850.0", "", good),
                ("e3", "17850", "", None),
                ("e4", "17850", "", d.UserEvent("NO SPACES", d.EventKind.CLICK, 1.0, 1)),
                ("e5", "17850", "not-a-token", good),
                ("e6", "17850", "", d.UserEvent("P1", d.EventKind.PURCHASE, 1.0, -3)),
            ]
        )
    fields = [v.field for v in info.value.violations]
    assert fields == [
        "events[0].event_id",
        "events[1].user_id",
        "events[2].type",
        "events[3].product_id",
        "events[4].attribution_token",
        "events[5].quantity",
    ]
    assert store.read_purchases() == []


async def test_record_events_bounds(store):
    with pytest.raises(InvalidArgumentError, match="events: must contain"):
        await _core(store).record_events([])
    many = [(f"e{i}", "1", "", d.UserEvent("P1", d.EventKind.CLICK, 1.0, 1)) for i in range(501)]
    with pytest.raises(InvalidArgumentError, match="at most 500"):
        await _core(store).record_events(many)


async def test_event_times_outside_the_readable_range_are_rejected_and_recommend_keeps_working(store):
    core = _core(store)
    year_9999 = 253402300799.999999999  # 9999-12-31T23:59:59.999999999Z as the servicer converts it
    for ts in (year_9999, -1.0, time.time() + 2 * 86_400):
        with pytest.raises(InvalidArgumentError) as info:
            await core.record_events([("e1", "17850", "", d.UserEvent("P1", d.EventKind.PURCHASE, ts, 1))])
        assert [v.field for v in info.value.violations] == ["events[0].event_time"]
    assert _counts(
        await core.record_events([("e1", "17850", "", d.UserEvent("P1", d.EventKind.PURCHASE, time.time() + 3600, 1))])
    ) == (1, 0)
    page = await core.recommend("17850", 5, False, _budget())
    assert len(page.items) == 5 and page.degradations == []


async def test_event_id_reused_with_another_payload_is_reported_and_nothing_stored(store):
    core = _core(store)
    click = d.UserEvent("P1", d.EventKind.CLICK, 1.0, 1)
    buy = d.UserEvent("P2", d.EventKind.PURCHASE, 2.0, 1)
    with pytest.raises(InvalidArgumentError) as info:
        await core.record_events([("e1", "17850", "", click), ("e1", "17850", "", buy)])
    assert [v.field for v in info.value.violations] == ["events[1].event_id"]
    await core.record_events([("e1", "17850", "", click)])
    with pytest.raises(AlreadyExistsError) as conflict:
        await core.record_events([("e2", "17850", "", buy), ("e1", "17850", "", buy)])
    assert [r.field for r in conflict.value.resources] == ["events[1].event_id"]
    assert store.read_purchases() == []
    # The same event again (a retry) is a duplicate, not a conflict.
    assert _counts(await core.record_events([("e1", "17850", "", click)])) == (0, 1)


async def test_ids_and_tokens_are_bounded_and_free_of_control_characters(store):
    click = d.UserEvent("P1", d.EventKind.CLICK, 1.0, 1)
    with pytest.raises(InvalidArgumentError) as info:
        await _core(store).record_events(
            [("e1", "17850", "x" * 257, click), ("e\x002", "17850", "", click), ("e" * 65, "17850", "", click)]
        )
    assert [v.field for v in info.value.violations] == [
        "events[0].attribution_token",
        "events[1].event_id",
        "events[2].event_id",
    ]
    assert _counts(await _core(store).record_events([("ü" * 64, "17850", "", click)])) == (1, 0)


class DownStore:
    """An event store whose database is unreachable."""

    def recent(self, user_id, limit=200, kinds=()):
        raise UnavailableError("event store unavailable", 1.0)

    append = keep_response = recent


async def test_event_store_outage_fails_record_events_but_only_degrades_search_and_recommend():
    retrieval = FakeRetrieval()
    core = _core(DownStore(), retrieval=retrieval)
    with pytest.raises(UnavailableError) as info:
        await core.record_events([("e1", "17850", "", d.UserEvent("P1", d.EventKind.CLICK, 1.0, 1))])
    assert info.value.retry_after_s > 0
    for page in (
        await core.recommend("17850", 5, True, _budget()),
        await core.search("lantern", "17850", 5, True, _budget()),
    ):
        assert len(page.items) == 5 and all(i.explanation for i in page.items)
        assert [(x.stage, x.reason.split(":")[0]) for x in page.degradations] == [
            (d.Stage.RETRIEVAL, "no fresh events"),
            (d.Stage.EXPLANATION, "not kept for on-demand explanations"),
        ]
    assert retrieval.seen_recent == []


class SlowStore:
    """An event store stuck waiting for a connection."""

    def recent(self, user_id, limit=200, kinds=()):
        time.sleep(1.2)
        return []

    keep_response = recent


async def test_slow_event_store_costs_only_a_slice_of_the_budget():
    start = time.monotonic()
    page = await _core(SlowStore()).recommend("17850", 5, True, _budget(1.0))
    assert time.monotonic() - start < 0.9
    assert len(page.items) == 5 and all(i.explanation for i in page.items)
    assert [x.reason for x in page.degradations] == [
        "no fresh events: the event store did not answer in time",
        "not kept for on-demand explanations: the event store did not answer in time",
    ]


async def test_a_shelf_reaches_retrieval_and_travels_in_the_attribution_token(store):
    from libs.experiments import shelf_of_stored

    retrieval = FakeRetrieval()
    core = GatewayCore(retrieval, FakeRanking(), FakeExplainer(), store, Variants.parse("fused:1"), FakeCatalog())
    page = await core.recommend(
        "", 5, True, Budget(time.monotonic() + 2.0), d.Shelf.FREQUENTLY_BOUGHT_TOGETHER, ["P3", "P4"]
    )
    assert retrieval.seen_shelf == (d.Shelf.FREQUENTLY_BOUGHT_TOGETHER, ["P3", "P4"])
    assert len(page.items) == 5 and all(i.explanation is not None for i in page.items)
    assert shelf_of_stored(page.attribution_token) == "FREQUENTLY_BOUGHT_TOGETHER"
    assert core.tokens.variant_of(page.attribution_token, "t") == "fused"  # still a valid token of this deployment
    searched = await core.search("lantern", "", 5, False, Budget(time.monotonic() + 2.0))
    assert shelf_of_stored(searched.attribution_token) == ""


async def test_pages_continue_one_ranked_list_without_repeats_or_gaps(store):
    core = _core(store)
    whole = await core.search("lantern", "17850", 20, False, _budget())
    first = await core.search("lantern", "17850", 7, False, _budget())
    assert [i.product_id for i in first.items] == [i.product_id for i in whole.items][:7] and first.next_page_token
    served, token, pages = [], "", 0
    while True:
        page = await core.search("lantern", "17850", 7, True, _budget(), Browse(page_token=token))
        served += [(i.product_id, i.score) for i in page.items]
        assert all(i.explanation is not None for i in page.items)  # explained on every page
        assert page.attribution_token and page.versions == [d.ModelVersion("gnn_ranker", "1")]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 5 and len(served) == 30 and len({p for p, _ in served}) == 30  # 7+7+7+7+2, no repeats
    assert served[:20] == [(i.product_id, i.score) for i in whole.items]  # no gaps: the same list


class ScoringExplainer(FakeExplainer):
    """Explains with the score FakeRanking gives P<i>: i."""

    async def explain(self, user_id, query, product_ids, variant, recent, timeout, **kwargs):
        return StageResult([d.Explanation([], f"why {p}", 0.5, score=float(p[1:])) for p in product_ids])


async def test_a_later_page_is_served_from_the_kept_list_whatever_happened_since(store):
    ranking = FakeRanking()
    core = _core(store, ranking=ranking, explainer=ScoringExplainer())
    first = await core.recommend("17850", 10, False, _budget(), browse=Browse())
    ranking.fail = UnavailableError("ranking: down")  # page 2 does not rank again
    second = await core.recommend("17850", 10, False, _budget(), browse=Browse(page_token=first.next_page_token))
    assert [i.product_id for i in second.items] == [f"P{i}" for i in range(19, 9, -1)]
    assert second.items[0].model_scores == {"fused": 19.0} and second.degradations == []
    # ExplainResult of a page-2 result, through page 2's attribution token: its served score
    ranking.fail = None
    out = await core.explain_result(second.attribution_token, ["P15"], _budget())
    assert out.items[0].score == 15.0


async def test_page_tokens_are_bound_to_their_request(store):
    core = _core(store)
    first = await core.search("lantern", "17850", 5, False, _budget())
    token = first.next_page_token
    for call in (
        core.search("lanterns", "17850", 5, False, _budget(), Browse(page_token=token)),
        core.search("lantern", "17851", 5, False, _budget(), Browse(page_token=token)),
        core.search("lantern", "17850", 6, False, _budget(), Browse(page_token=token)),
        core.search(
            "lantern", "17850", 5, False, _budget(), Browse(ProductFilter(include_out_of_stock=True), page_token=token)
        ),
        core.search(
            "lantern", "17850", 5, False, _budget(), Browse(order_by=OrderBy.PRICE_ASCENDING, page_token=token)
        ),
        core.recommend("17850", 5, False, _budget(), browse=Browse(page_token=token)),
        core.search("lantern", "17850", 5, False, _budget(), Browse(page_token=token[:-3] + "abc")),
        core.search("lantern", "17850", 5, False, _budget(), Browse(page_token=first.attribution_token)),
    ):
        with pytest.raises(InvalidArgumentError) as info:
            await call
        assert [v.field for v in info.value.violations] == ["page_token"]
    page = await core.search("lantern", "17850", 5, False, _budget(), Browse(page_token=token))
    assert len(page.items) == 5  # still serving, and the token still good


async def test_a_list_no_longer_kept_is_a_failed_precondition_not_another_list(store):
    core = GatewayCore(
        FakeRetrieval(), FakeRanking(), FakeExplainer(), store, Variants.parse("fused:1"), FakeCatalog(), None, 0.05
    )
    first = await core.search("lantern", "", 5, False, _budget())
    time.sleep(0.1)
    with pytest.raises(FailedPreconditionError) as info:
        await core.search("lantern", "", 5, False, _budget(), Browse(page_token=first.next_page_token))
    assert info.value.reason == RESPONSE_NOT_KEPT


async def test_the_filter_applies_before_the_page_is_cut_and_on_later_pages(store):
    catalog = FakeCatalog(sold_out={"P28"})
    core = _core(store, catalog=catalog)
    cheap = ProductFilter(max_price=d.Money("GBP", 1), exclude_product_ids=frozenset({"P27"}))
    for i in (29, 26, 25, 24, 23, 22, 21, 20, 3):
        catalog.products[f"P{i}"] = _priced(catalog.products[f"P{i}"], d.Money("GBP", 0, 10_000_000 * i))
    retrieval = core.retrieval
    first = await core.search("lantern", "", 4, False, _budget(), Browse(cheap))
    assert retrieval.seen_filter == cheap  # pushed into retrieval
    assert [i.product_id for i in first.items] == ["P29", "P26", "P25", "P24"]  # full, P28 sold out, P27 excluded
    catalog.products["P22"] = _priced(catalog.products["P22"], d.Money("GBP", 5))  # repriced out of the band
    second = await core.search("lantern", "", 4, False, _budget(), Browse(cheap, page_token=first.next_page_token))
    assert [i.product_id for i in second.items] == ["P23", "P21", "P20"]  # P22 left, nothing repeated
    third = await core.search("lantern", "", 4, False, _budget(), Browse(cheap, page_token=second.next_page_token))
    assert [i.product_id for i in third.items] == ["P3"] and third.next_page_token == ""


async def test_price_order_applies_to_the_filtered_relevance_list_unpriced_last(store):
    catalog = FakeCatalog()
    for i in range(30):
        catalog.products[f"P{i}"] = _priced(catalog.products[f"P{i}"], d.Money("GBP", i % 7, 0))
    del catalog.products["P29"]  # no catalogue row: no price
    core = _core(store, catalog=catalog)
    page = await core.search("lantern", "", 30, False, _budget(), Browse(order_by=OrderBy.PRICE_ASCENDING))
    prices = [i.price.units for i in page.items[:-1]]
    assert prices == sorted(prices) and page.items[-1].product_id == "P29"
    same_price = [i.product_id for i in page.items if i.price and i.price.units == 0]
    assert same_price == ["P28", "P21", "P14", "P7", "P0"]  # relevance order within a price
    down = await core.search("lantern", "", 30, False, _budget(), Browse(order_by=OrderBy.PRICE_DESCENDING))
    assert [i.price.units for i in down.items[:-1]] == sorted(prices, reverse=True)


def _priced(p: Product, price: d.Money) -> Product:
    c = p.content
    return Product(ProductContent(c.product_id, c.title, price, c.availability), 0.0, 0.0, p.change_seq)


async def test_the_explanation_arm_decides_what_an_explained_page_shows_and_travels_in_the_token(store):
    from libs.experiments import ExplanationArms, explanation_arm_of_stored

    class Counting(FakeExplainer):
        calls = 0

        async def explain(self, *args, **kwargs):
            Counting.calls += 1
            return await super().explain(*args, **kwargs)

    for arm, shown in (("none", None), ("sentence", "why P29")):
        core = GatewayCore(
            FakeRetrieval(),
            FakeRanking(),
            Counting(),
            store,
            Variants.parse("fused:1"),
            FakeCatalog(),
            explanation_arms=ExplanationArms.parse(f"{arm}:1"),
        )
        before = Counting.calls
        page = await core.search("lantern", "17850", 5, True, _budget())
        assert explanation_arm_of_stored(page.attribution_token) == arm
        assert (page.items[0].explanation.sentence if page.items[0].explanation else None) == shown
        assert Counting.calls - before == (arm != "none")  # "none" costs no explanation call
        unexplained = await core.search("lantern", "17850", 5, False, _budget())
        assert explanation_arm_of_stored(unexplained.attribution_token) == ""  # no explanation asked: no arm


async def test_ranking_and_explanation_are_asked_for_the_shelfs_weights_the_token_keeps_the_arm(store):
    """On a shelf the gateway asks ranking and explanation for "<variant>+shelf=<SHELF>" (both fuse with the
    shelf's weights); FOR_YOU and Search ask for the variant as it is; the attribution token carries the arm."""

    class Seen(FakeRanking):
        async def rank(self, user_id, query, candidates, page_size, variant, recent, timeout):
            self.variant = variant
            return await super().rank(user_id, query, candidates, page_size, variant, recent, timeout)

    class SeenExplainer(FakeExplainer):
        async def explain(self, user_id, query, product_ids, variant, recent, timeout, **kw):
            self.variant = variant
            return await super().explain(user_id, query, product_ids, variant, recent, timeout, **kw)

    ranking, explainer = Seen(), SeenExplainer()
    core = _core(store, ranking=ranking, explainer=explainer, variants="fused+explore=0.2:1")
    page = await core.recommend("1", 5, True, _budget(2.0), d.Shelf.DISCOVER)
    assert ranking.variant == explainer.variant == "fused+explore=0.2+shelf=DISCOVER"
    assert page.variant == core.tokens.variant_of(page.attribution_token, "t") == "fused+explore=0.2"
    await core.recommend("1", 5, True, _budget(2.0), d.Shelf.FOR_YOU)
    assert ranking.variant == explainer.variant == "fused+explore=0.2"
    await core.search("lantern", "1", 5, True, _budget(2.0))
    assert ranking.variant == "fused+explore=0.2"
