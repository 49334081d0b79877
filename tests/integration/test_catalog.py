"""CatalogService end to end: the real gateway (its SQLite store), real retrieval/ranking, real Triton, loopback gRPC.

Products written here have ids no other test reads, except the one sold out and restored in
test_sold_out_product_leaves_search_within_two_seconds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from google.type import money_pb2
from shop.catalog.v1 import catalog_service_pb2 as pb
from shop.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from shop.common.v1 import common_pb2 as cpb
from shop.gateway.v1 import gateway_service_pb2 as gpb

from libs.stack import Stack

FRESHNESS_S = 2.0


@pytest.fixture
def catalog(stack: Stack) -> Iterator[pb_grpc.CatalogServiceStub]:
    with grpc.insecure_channel(stack.addresses["gateway"]) as channel:
        yield pb_grpc.CatalogServiceStub(channel)


def _details(err: grpc.RpcError) -> status_pb2.Status:
    return status_pb2.Status.FromString(dict(err.trailing_metadata())["grpc-status-details-bin"])


def _violations(err: grpc.RpcError) -> list[str]:
    bad = error_details_pb2.BadRequest()
    assert _details(err).details[0].Unpack(bad)
    return [v.field for v in bad.field_violations]


def _product(
    pid: str,
    title: str = "TEST CATALOGUE LANTERN",
    units: int = 4,
    nanos: int = 250_000_000,
    availability: int = cpb.AVAILABILITY_IN_STOCK,
) -> pb.Product:
    return pb.Product(
        product_id=pid,
        title=title,
        price=money_pb2.Money(currency_code="GBP", units=units, nanos=nanos),
        availability=availability,
        categories=["lights"],
    )


def _new_id() -> str:
    return f"T-{uuid.uuid4().hex[:10]}"


def test_upsert_get_list_delete(catalog):
    pid = _new_id()
    stored = catalog.UpsertProducts(pb.UpsertProductsRequest(products=[_product(pid)]), timeout=10)
    assert (stored.created_count, stored.updated_count, stored.unchanged_count) == (1, 0, 0)
    got = catalog.GetProduct(pb.GetProductRequest(product_id=pid), timeout=10).product
    assert got.title == "TEST CATALOGUE LANTERN" and (got.price.units, got.price.nanos) == (4, 250_000_000)
    assert got.change_seq == stored.products[0].change_seq > 0 and got.create_time.seconds > 0
    # Idempotent: the same product again changes nothing.
    again = catalog.UpsertProducts(pb.UpsertProductsRequest(products=[_product(pid)]), timeout=10)
    assert again.unchanged_count == 1 and again.products[0].change_seq == got.change_seq
    # The seeded dataset catalogue plus what tests added, a page at a time, each product once.
    seen, token = [], ""
    while True:
        page = catalog.ListProducts(pb.ListProductsRequest(page_size=1000, page_token=token), timeout=10)
        seen += [p.product_id for p in page.products]
        if not (token := page.next_page_token):
            break
    assert len(seen) == len(set(seen)) > 3000 and pid in seen and "85123A" in seen
    deleted = catalog.DeleteProducts(pb.DeleteProductsRequest(product_ids=[pid]), timeout=10)
    assert deleted.deleted_count == 1
    assert (
        catalog.GetProduct(pb.GetProductRequest(product_id=pid), timeout=10).product.availability
        == cpb.AVAILABILITY_DISCONTINUED
    )


def test_invalid_batch_names_the_fields_and_stores_nothing(catalog):
    good, bad = _new_id(), _new_id()
    request = pb.UpsertProductsRequest(products=[_product(good), _product(bad, title="", units=-1), _product(good)])
    with pytest.raises(grpc.RpcError) as info:
        catalog.UpsertProducts(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(info.value) == ["products[1].title", "products[1].price.units", "products[2].product_id"]
    with pytest.raises(grpc.RpcError) as missing:
        catalog.GetProduct(pb.GetProductRequest(product_id=good), timeout=10)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    info_detail = error_details_pb2.ErrorInfo()
    assert _details(missing.value).details[-1].Unpack(info_detail) and info_detail.reason == "RESOURCE_NOT_FOUND"
    too_many = pb.UpsertProductsRequest(products=[_product(f"{good}-{i}") for i in range(501)])
    with pytest.raises(grpc.RpcError) as info:
        catalog.UpsertProducts(too_many, timeout=10)
    assert _violations(info.value) == ["products"]


def test_event_for_an_unknown_product_is_kept_and_joins_when_the_product_arrives(gateway, catalog):
    pid = _new_id()

    def buy() -> gpb.RecordEventsResponse:
        event = gpb.Event(event_id=uuid.uuid4().hex, type=cpb.EVENT_TYPE_PURCHASE, user_id="12347", product_id=pid)
        return gateway.RecordEvents(gpb.RecordEventsRequest(events=[event]), timeout=10)

    first = buy()
    assert (first.accepted_count, first.unjoined_count, list(first.unjoined_product_ids)) == (1, 1, [pid])
    catalog.UpsertProducts(pb.UpsertProductsRequest(products=[_product(pid)]), timeout=10)
    second = buy()
    assert (second.accepted_count, second.unjoined_count, list(second.unjoined_product_ids)) == (1, 0, [])
    # Recommend keeps serving the customer who bought a product newer than the models.
    assert gateway.Recommend(gpb.RecommendRequest(user_id="12347", page_size=5), timeout=10).results


def _search_ids(gateway) -> list[str]:
    return [
        r.product.product_id
        for r in gateway.Search(gpb.SearchRequest(query="lantern", page_size=20), timeout=10).results
    ]


def test_sold_out_product_leaves_search_within_two_seconds(gateway, catalog):
    first = gateway.Search(gpb.SearchRequest(query="lantern", page_size=20), timeout=10).results
    assert first and all(r.availability == cpb.AVAILABILITY_IN_STOCK and r.price.currency_code == "GBP" for r in first)
    top = first[0].product.product_id
    stored = catalog.GetProduct(pb.GetProductRequest(product_id=top), timeout=10).product
    sold_out = pb.Product(
        product_id=top, title=stored.title, price=stored.price, availability=cpb.AVAILABILITY_OUT_OF_STOCK
    )
    catalog.UpsertProducts(pb.UpsertProductsRequest(products=[sold_out]), timeout=10)
    try:
        start = time.monotonic()
        while top in _search_ids(gateway):
            assert time.monotonic() - start < FRESHNESS_S, f"{top} still served {FRESHNESS_S} s after selling out"
            time.sleep(0.05)
        assert len(_search_ids(gateway)) == 20  # filtered before the page is cut: still a full page
    finally:
        restored = pb.Product(
            product_id=top,
            title=stored.title,
            price=stored.price,
            description=stored.description,
            categories=stored.categories,
            availability=cpb.AVAILABILITY_IN_STOCK,
        )
        catalog.UpsertProducts(pb.UpsertProductsRequest(products=[restored]), timeout=10)
    start = time.monotonic()
    while top not in _search_ids(gateway):
        assert time.monotonic() - start < FRESHNESS_S
        time.sleep(0.05)
