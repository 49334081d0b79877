"""Servicers are thin: these check only what they decide themselves (which field a value is read from)."""

import pytest
from google.type import money_pb2
from shop.common.v1 import common_pb2 as cpb
from shop.gateway.v1 import gateway_service_pb2 as gpb
from shop.retrieval.v1 import retrieval_service_pb2 as rpb

from libs.domain import Money
from libs.errors import InvalidArgumentError
from libs.storefront import ProductFilter
from libs.events.sqlite import SqliteEventStore
from libs.gateway import GatewayCore
from libs.experiments import Variants
from services.gateway.servicer import GatewayServicer
from services.retrieval.servicer import RetrievalServicer

NEWER = 99  # an enum value added by a peer built from newer protos


async def test_newer_or_unspecified_event_type_is_invalid_argument_naming_the_field(tmp_path):
    store = SqliteEventStore(tmp_path / "events.sqlite3")
    core = GatewayCore(None, None, None, store, Variants.parse("fused:1"), None)
    request = gpb.RecordEventsRequest(
        events=[
            gpb.Event(event_id="e1", type=NEWER, user_id="1", product_id="A"),
            gpb.Event(event_id="e2", user_id="1", product_id="A"),
        ]
    )
    try:
        with pytest.raises(InvalidArgumentError) as info:
            await GatewayServicer(core, 1.0).RecordEvents(request, None)
    finally:
        store.close()
    assert [v.field for v in info.value.violations] == ["events[0].type", "events[1].type"]


class _Core:
    async def query_candidates(self, query, user_id, limit, timeout, product_filter=None):
        self.limit, self.timeout, self.product_filter = limit, timeout, product_filter
        return [], [], ""


class _Context:
    def time_remaining(self):
        return None


@pytest.mark.parametrize(
    ("page_size", "limit", "expected"), [(0, 0, 200), (7, 0, 7), (0, 9, 9), (7, 9, 7), (5000, 0, 1000)]
)
async def test_retrieval_reads_page_size_then_the_deprecated_limit(page_size, limit, expected):
    core = _Core()
    await RetrievalServicer(lambda: core, 1.0).RetrieveQueryCandidates(
        rpb.RetrieveQueryCandidatesRequest(query="lantern", page_size=page_size, limit=limit), _Context()
    )
    assert core.limit == expected


@pytest.mark.parametrize(
    ("page_size", "limit", "field"), [(-1, 0, "page_size"), (0, -1, "limit"), (-1, 5, "page_size")]
)
async def test_retrieval_names_the_count_field_it_rejects(page_size, limit, field):
    with pytest.raises(InvalidArgumentError) as info:
        await RetrievalServicer(lambda: _Core(), 1.0).RetrieveQueryCandidates(
            rpb.RetrieveQueryCandidatesRequest(query="lantern", page_size=page_size, limit=limit), _Context()
        )
    assert [v.field for v in info.value.violations] == [field]


@pytest.mark.parametrize(
    ("request_fields", "fields"),
    [
        ({"shelf": NEWER, "user_id": "1"}, ["shelf"]),
        ({"shelf": 2}, ["user_id"]),  # SHELF_BUY_AGAIN without a customer
        ({"user_id": "1", "context_product_ids": ["A"]}, ["context_product_ids"]),  # FOR_YOU takes no context
        ({"shelf": 5, "context_product_ids": ["A", "B"]}, ["context_product_ids"]),  # SIMILAR_ITEMS: exactly one
        ({"shelf": 4, "context_product_ids": ["A", "bad id"]}, ["context_product_ids[1]"]),
        ({"shelf": 4, "user_id": "x1", "context_product_ids": ["A"]}, ["user_id"]),
    ],
)
async def test_recommend_names_the_shelf_field_it_rejects(request_fields, fields):
    core = GatewayCore(None, None, None, None, Variants.parse("fused:1"), None)  # never reached
    with pytest.raises(InvalidArgumentError) as info:
        await GatewayServicer(core, 1.0).Recommend(gpb.RecommendRequest(**request_fields), _Context())
    assert [v.field for v in info.value.violations] == fields


async def test_retrieval_refuses_a_shelf_without_its_context():
    with pytest.raises(InvalidArgumentError) as info:
        await RetrievalServicer(_Core(), 1.0).RetrieveUserCandidates(
            rpb.RetrieveUserCandidatesRequest(shelf=5), _Context()
        )
    assert [v.field for v in info.value.violations] == ["context_product_ids"]


async def test_retrieval_reads_the_filter_and_names_its_bad_fields():
    core = _Core()
    band = cpb.ProductFilter(max_price=money_pb2.Money(currency_code="GBP", units=2), exclude_product_ids=["A"])
    await RetrievalServicer(lambda: core, 1.0).RetrieveQueryCandidates(
        rpb.RetrieveQueryCandidatesRequest(query="lantern", filter=band), _Context()
    )
    assert core.product_filter == ProductFilter(max_price=Money("GBP", 2), exclude_product_ids=frozenset({"A"}))
    bad = cpb.ProductFilter(min_price=money_pb2.Money(currency_code="GBP", units=-1), categories=[""])
    with pytest.raises(InvalidArgumentError) as info:
        await RetrievalServicer(lambda: core, 1.0).RetrieveQueryCandidates(
            rpb.RetrieveQueryCandidatesRequest(query="lantern", filter=bad), _Context()
        )
    assert [v.field for v in info.value.violations] == ["filter.min_price.units", "filter.categories[0]"]
