"""Storefront query features on the real stack (Triton, the four services over loopback gRPC, the trained models,
the catalogue and event store): filters applied before the page is cut, pages of one ranked list, price order,
explanations on later pages, and bad tokens and filters refused while the server keeps serving."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.type import money_pb2
from shop.catalog.v1 import catalog_service_pb2 as cat
from shop.catalog.v1 import catalog_service_pb2_grpc as cat_grpc
from shop.common.v1 import common_pb2 as cpb
from shop.gateway.v1 import gateway_service_pb2 as pb
from shop.retrieval.v1 import retrieval_service_pb2 as qpb
from shop.retrieval.v1 import retrieval_service_pb2_grpc as qpb_grpc

from libs.stack import Stack
from tests.integration.test_catalog_search import _wait_for
from tests.integration.test_explain_result import check_explains_the_served_scores

# Real shoppers' words; each matches far more than 40 titles of the catalogue.
QUERIES = ("christmas", "heart", "bag", "lantern", "cake", "vintage", "box", "card")
USER = "17850"


def _gbp(units: int, nanos: int = 0) -> money_pb2.Money:
    return money_pb2.Money(currency_code="GBP", units=units, nanos=nanos)


def _price(r: cpb.ScoredProduct) -> float | None:
    return r.price.units + r.price.nanos / 1e9 if r.HasField("price") else None


def _ids(resp) -> list[str]:
    return [r.product.product_id for r in resp.results]


@pytest.fixture
def catalog(stack: Stack) -> Iterator[cat_grpc.CatalogServiceStub]:
    with grpc.insecure_channel(stack.addresses["gateway"]) as channel:
        yield cat_grpc.CatalogServiceStub(channel)


@pytest.fixture
def retrieval(stack: Stack) -> Iterator[qpb_grpc.RetrievalServiceStub]:
    with grpc.insecure_channel(stack.addresses["retrieval"]) as channel:
        yield qpb_grpc.RetrievalServiceStub(channel)


def _search(gateway, query: str = "christmas", **kw) -> pb.SearchResponse:
    return gateway.Search(pb.SearchRequest(query=query, user_id=kw.pop("user_id", USER), **kw), timeout=30)


def test_page_two_continues_page_one_of_the_same_list_even_after_new_events(gateway):
    for call, request in (
        (gateway.Search, lambda **kw: pb.SearchRequest(query="heart", user_id=USER, **kw)),
        (gateway.Recommend, lambda **kw: pb.RecommendRequest(user_id=USER, **kw)),
    ):
        whole = call(request(page_size=20), timeout=30)
        first = call(request(page_size=10), timeout=30)
        assert first.next_page_token and len(first.results) == 10
        # A purchase between the pages changes the next fresh ranking, not the list being paged.
        gateway.RecordEvents(
            pb.RecordEventsRequest(
                events=[
                    pb.Event(
                        event_id=uuid.uuid4().hex,
                        type=cpb.EVENT_TYPE_PURCHASE,
                        user_id=USER,
                        product_id=whole.results[15].product.product_id,
                    )
                ]
            ),
            timeout=10,
        )
        second = call(request(page_size=10, page_token=first.next_page_token), timeout=30)
        assert not set(_ids(first)) & set(_ids(second))
        assert [(r.product.product_id, r.score) for r in list(first.results) + list(second.results)] == [
            (r.product.product_id, r.score) for r in whole.results
        ]
        assert second.variant == first.variant and second.attribution_token and not second.degradations


def test_filtered_pages_are_full_and_hold_only_matching_products(gateway, retrieval):
    """A price band the first 200 unfiltered candidates fill only partly: every page is full (20) while enough
    products match, and page 2 continues it. Prints how full the pages are, and how many of the 200 unfiltered
    candidates the band would have left had it been applied after the cut."""
    band = cpb.ProductFilter(min_price=_gbp(0, 500_000_000), max_price=_gbp(1))
    rows = []
    for query in QUERIES:
        unfiltered = retrieval.RetrieveQueryCandidates(
            qpb.RetrieveQueryCandidatesRequest(query=query, user_id=USER, page_size=200), timeout=30
        ).candidates
        pushed = retrieval.RetrieveQueryCandidates(
            qpb.RetrieveQueryCandidatesRequest(query=query, user_id=USER, page_size=200, filter=band), timeout=30
        ).candidates
        in_band = {c.product.product_id for c in pushed}
        after_cut = sum(c.product.product_id in in_band for c in unfiltered)
        first = _search(gateway, query, page_size=20, filter=band)
        second = _search(gateway, query, page_size=20, filter=band, page_token=first.next_page_token)
        for resp in (first, second):
            assert all(0.5 <= _price(r) <= 1.0 for r in resp.results)
            assert all(r.availability == cpb.AVAILABILITY_IN_STOCK for r in resp.results)
        assert not set(_ids(first)) & set(_ids(second))
        for resp in (first, second):  # a short page only at the end of the list: fewer products matched
            assert len(resp.results) == 20 or not resp.next_page_token
        rows.append((query, len(first.results), len(second.results), after_cut, len(pushed)))
    print("\n| query | page 1 | page 2 | in band of the unfiltered 200 | in band, filter in retrieval |")
    print("|---|---|---|---|---|")
    for query, a, b, cut, pushed_n in rows:
        print(f"| {query} | {a} | {b} | {cut} | {pushed_n} |")
    full = sum((a == 20) + (b == 20) for _, a, b, _, _ in rows)
    print(f"full pages: {full}/{2 * len(rows)}")


def test_price_order_and_exclusions_apply_to_the_filtered_list(gateway):
    up = _search(gateway, page_size=50, order_by=cpb.ORDER_BY_PRICE_ASCENDING)
    up2 = _search(gateway, page_size=50, order_by=cpb.ORDER_BY_PRICE_ASCENDING, page_token=up.next_page_token)
    assert len(up.results) == 50 and _by_price_within_grades(list(up.results) + list(up2.results), reverse=False)
    assert up.results[0].model_scores["relevance"] > 0  # titles holding "christmas" first, cheapest first
    down = _search(gateway, page_size=50, order_by=cpb.ORDER_BY_PRICE_DESCENDING)
    assert _by_price_within_grades(down.results, reverse=True)
    lamps = _search(gateway, "lantern", page_size=20, order_by=cpb.ORDER_BY_PRICE_ASCENDING)
    assert all("LANTERN" in r.product.title for r in lamps.results)  # not cheaper neighbours
    plain = _search(gateway, page_size=20)
    basket = _ids(plain)[:5]
    without = _search(gateway, page_size=20, filter=cpb.ProductFilter(exclude_product_ids=basket))
    assert len(without.results) == 20 and not set(basket) & set(_ids(without))
    rest = _ids(plain)[5:]  # the same ranking, the basket left out (a candidate that moved up may join it)
    assert [p for p in _ids(without) if p in rest] == [p for p in rest if p in _ids(without)]


def test_explanations_hold_on_filtered_later_pages(gateway):
    band = cpb.ProductFilter(max_price=_gbp(2))
    first = _search(gateway, "lantern", page_size=10, filter=band)
    second = _search(gateway, "lantern", page_size=10, filter=band, page_token=first.next_page_token, explain=True)
    assert len(second.results) == 10 and not second.degradations
    for r in second.results:
        assert abs(r.explanation.score - r.score) <= 1e-6 and r.explanation.sentence
    check_explains_the_served_scores(gateway, second, picks=(0, 4, 9))
    recommended = gateway.Recommend(pb.RecommendRequest(user_id=USER, page_size=10, filter=band), timeout=30)
    page2 = gateway.Recommend(
        pb.RecommendRequest(user_id=USER, page_size=10, filter=band, page_token=recommended.next_page_token),
        timeout=30,
    )
    assert all(_price(r) <= 2.0 for r in page2.results)
    check_explains_the_served_scores(gateway, page2, picks=(0, 9))


def test_sold_out_products_only_when_asked_and_categories_filter(gateway, catalog):
    word = f"ZQ{uuid.uuid4().hex[:6].upper()}"
    sold_out, tagged = f"S-{uuid.uuid4().hex[:8]}", f"T-{uuid.uuid4().hex[:8]}"
    catalog.UpsertProducts(
        cat.UpsertProductsRequest(
            products=[
                cat.Product(
                    product_id=sold_out,
                    title=f"{word} TEA CUP",
                    price=_gbp(3),
                    availability=cpb.AVAILABILITY_OUT_OF_STOCK,
                ),
                cat.Product(
                    product_id=tagged,
                    title=f"{word} TEA POT",
                    price=_gbp(4),
                    availability=cpb.AVAILABILITY_IN_STOCK,
                    categories=[f"Tea {word}"],
                ),
            ]
        ),
        timeout=10,
    )
    asked = cpb.ProductFilter(include_out_of_stock=True)
    _wait_for(lambda: sold_out in _ids(_search(gateway, word, filter=asked)), "the sold-out product, when asked")
    results = _search(gateway, word, page_size=100).results
    assert sold_out not in [r.product.product_id for r in results] and tagged in [r.product.product_id for r in results]
    assert all(r.availability != cpb.AVAILABILITY_OUT_OF_STOCK for r in results)
    served = [r for r in _search(gateway, word, filter=asked).results if r.product.product_id == sold_out]
    assert served[0].availability == cpb.AVAILABILITY_OUT_OF_STOCK
    only = _search(gateway, word, page_size=100, filter=cpb.ProductFilter(categories=[f"Tea {word}"]))
    assert _ids(only) == [tagged]


def _by_price_within_grades(results, reverse: bool) -> bool:
    """Relevance first (grades of query relevance, best first), by price within each grade."""
    grades = [r.model_scores["relevance"] for r in results]
    if grades != sorted(grades, reverse=True):
        return False
    for grade in set(grades):
        prices = [_price(r) for r in results if r.model_scores["relevance"] == grade]
        if prices != sorted(prices, reverse=reverse):
            return False
    return True


def _refused(call, field: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in info.value.details()


def test_bad_tokens_and_filters_are_invalid_arguments_and_the_server_keeps_serving(gateway):
    first = _search(gateway, page_size=10)
    token = first.next_page_token
    body, _, sig = token.partition(".")
    _refused(lambda: _search(gateway, page_size=10, page_token=body[:-2] + "AA." + sig), "page_token")
    _refused(lambda: _search(gateway, page_size=10, page_token=first.attribution_token), "page_token")
    _refused(lambda: _search(gateway, "heart", page_size=10, page_token=token), "page_token")  # another query
    _refused(lambda: _search(gateway, page_size=11, page_token=token), "page_token")
    _refused(lambda: _search(gateway, filter=cpb.ProductFilter(min_price=_gbp(-1))), "filter.min_price.units")
    _refused(
        lambda: _search(gateway, filter=cpb.ProductFilter(min_price=_gbp(3), max_price=_gbp(2))), "filter.max_price"
    )
    _refused(lambda: _search(gateway, order_by=42), "order_by")
    _refused(lambda: gateway.Recommend(pb.RecommendRequest(user_id=USER, page_token=token), timeout=30), "page_token")
    second = _search(gateway, page_size=10, page_token=token)  # the good token still works after all that
    assert len(second.results) == 10 and not set(_ids(first)) & set(_ids(second))
