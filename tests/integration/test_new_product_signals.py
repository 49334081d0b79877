"""New products through the popularity and co-purchase signals, without a retrain: the real stack (Triton, the four
services, the SQLite event store and catalogue). A product upserted after the bundle, then bought in baskets with a
product of the bundle, gets the rankers' popularity feature and co-purchase neighbours from those recorded orders
(libs/fresh_signals.py): its served score changes, and its explanation counts those orders and names the product it
is bought with."""

from __future__ import annotations

import time
import uuid

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.type import money_pb2
from shop.catalog.v1 import catalog_service_pb2 as cpb
from shop.catalog.v1 import catalog_service_pb2_grpc as cpb_grpc
from shop.common.v1 import common_pb2
from shop.gateway.v1 import gateway_service_pb2 as gpb

ORDERS = 5
USER = "17850"  # a real customer, who does not buy the new product here
SIGNALS_S = 10.0  # the services poll every 0.5 s; generous for a busy machine


@pytest.fixture
def catalog(stack):
    with grpc.insecure_channel(stack.addresses["gateway"]) as channel:
        yield cpb_grpc.CatalogServiceStub(channel)


def _explained(gateway, word: str, user: str = "") -> common_pb2.ScoredProduct:
    """The new product's result for a Search of its own title word, with every measured piece of evidence (waits
    for retrieval to index it: within 2 s of its upsert). A response served just before the services counted new
    purchases cannot be explained with its served score after (RESULT_CHANGED): then a new Search."""
    deadline = time.monotonic() + SIGNALS_S
    while True:
        resp = gateway.Search(gpb.SearchRequest(query=word, user_id=user, page_size=5), timeout=20)
        if resp.results and word.upper() in resp.results[0].product.title:
            pid = resp.results[0].product.product_id
            try:
                out = gateway.ExplainResult(
                    gpb.ExplainResultRequest(attribution_token=resp.attribution_token, product_ids=[pid]), timeout=20
                )
                return out.results[0]
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
        assert time.monotonic() < deadline, "the new product is not found, or never explained"
        time.sleep(0.1)


def _evidence(result: common_pb2.ScoredProduct, kind: int) -> list:
    return [e for e in result.explanation.evidence if e.type == kind]


def test_a_new_products_recorded_orders_reach_its_popularity_and_co_purchase_signals(gateway, catalog):
    word = "zq" + uuid.uuid4().hex[:8]
    pid = f"S-{uuid.uuid4().hex[:10]}"
    catalog.UpsertProducts(
        cpb.UpsertProductsRequest(
            products=[
                cpb.Product(
                    product_id=pid,
                    title=f"{word.upper()} ENAMEL MUG",
                    price=money_pb2.Money(currency_code="GBP", units=3),
                    availability=common_pb2.AVAILABILITY_IN_STOCK,
                )
            ]
        ),
        timeout=10,
    )
    before = _explained(gateway, word)
    assert not any(e.count for e in _evidence(before, common_pb2.EVIDENCE_TYPE_POPULARITY))
    # What other shoppers buy it with: a past purchase of USER that the rankers read (evidence for it already).
    past = _evidence(_explained(gateway, word, USER), common_pb2.EVIDENCE_TYPE_PAST_PURCHASE)
    assert past, "USER's history gave no evidence"
    bought_with = past[0].product.product_id
    now = time.time()
    buyers = [str(90_000_000 + i * 1000 + int(uuid.uuid4().int % 1000)) for i in range(ORDERS)]
    events = []
    for i, user in enumerate(buyers):  # one basket each: the new product and bought_with at the same instant
        at = timestamp_pb2.Timestamp(seconds=int(now) - 60 + i)
        events += [
            gpb.Event(
                event_id=f"{pid}-{i}-{p}",
                type=common_pb2.EVENT_TYPE_PURCHASE,
                user_id=user,
                product_id=p,
                event_time=at,
                quantity=1,
            )
            for p in (pid, bought_with)
        ]
    recorded = gateway.RecordEvents(gpb.RecordEventsRequest(events=events), timeout=10)
    assert recorded.accepted_count == 2 * ORDERS and recorded.unjoined_count == 0

    deadline = time.monotonic() + SIGNALS_S
    while True:
        after = _explained(gateway, word)
        popularity = _evidence(after, common_pb2.EVIDENCE_TYPE_POPULARITY)
        if popularity and popularity[0].count == ORDERS:
            break
        assert time.monotonic() < deadline, f"popularity evidence {popularity} never counted {ORDERS} orders"
        time.sleep(0.2)
    # The rankers read the new popularity and neighbours: the same anonymous Search scores the product otherwise
    # (the served score, which ExplainResult explains exactly; the query relevance part is the same).
    assert after.explanation.score != pytest.approx(before.explanation.score, abs=1e-6)
    assert popularity[0].window_days == 28 and popularity[0].contribution != 0.0
    # USER's past purchase that shoppers buy it with is now its co-purchase neighbour, not only a past purchase.
    mine = _evidence(_explained(gateway, word, USER), common_pb2.EVIDENCE_TYPE_CO_PURCHASE_NEIGHBOUR)
    assert bought_with in [e.product.product_id for e in mine]
