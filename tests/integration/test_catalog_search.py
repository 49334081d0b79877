"""New products searchable within seconds: upsert through the real gateway's CatalogService, then find them through
the real retrieval (tantivy + usearch following the catalogue, titles embedded by Triton's text encoder) and the
real ranking and explanation (products newer than the bundle scored from their title embedding), over loopback
gRPC."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.type import money_pb2
from shop.catalog.v1 import catalog_service_pb2 as pb
from shop.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from shop.common.v1 import common_pb2 as cpb
from shop.gateway.v1 import gateway_service_pb2 as gpb
from shop.retrieval.v1 import retrieval_service_pb2 as qpb
from shop.retrieval.v1 import retrieval_service_pb2_grpc as qpb_grpc

from libs.stack import Stack

FRESHNESS_S = 2.0


@pytest.fixture
def catalog(stack: Stack) -> Iterator[pb_grpc.CatalogServiceStub]:
    with grpc.insecure_channel(stack.addresses["gateway"]) as channel:
        yield pb_grpc.CatalogServiceStub(channel)


@pytest.fixture
def retrieval(stack: Stack) -> Iterator[qpb_grpc.RetrievalServiceStub]:
    with grpc.insecure_channel(stack.addresses["retrieval"]) as channel:
        yield qpb_grpc.RetrievalServiceStub(channel)


def _upsert(catalog, pid: str, title: str, availability: int = cpb.AVAILABILITY_IN_STOCK) -> None:
    catalog.UpsertProducts(
        pb.UpsertProductsRequest(
            products=[
                pb.Product(
                    product_id=pid,
                    title=title,
                    price=money_pb2.Money(currency_code="GBP", units=3),
                    availability=availability,
                )
            ]
        ),
        timeout=10,
    )


def _wait_for(found, what: str) -> float:
    start = time.monotonic()
    while not found():
        assert time.monotonic() - start < FRESHNESS_S, f"{what} not within {FRESHNESS_S} s"
        time.sleep(0.05)
    return time.monotonic() - start


def test_new_product_is_found_by_search_within_two_seconds(gateway, catalog, retrieval):
    word = "zq" + uuid.uuid4().hex[:6]  # a word no other title has
    pid, title = f"N-{uuid.uuid4().hex[:8]}", f"{word.upper()} GLASS HANGING LANTERN"
    _upsert(catalog, pid, title)

    def search() -> gpb.SearchResponse:
        return gateway.Search(gpb.SearchRequest(query=f"{word} lantern", page_size=10, explain=True), timeout=10)

    _wait_for(lambda: pid in [r.product.product_id for r in search().results], "Search finding it")
    page = search()
    found = next(r for r in page.results if r.product.product_id == pid)
    assert page.results[0].product.product_id == pid  # the only title with every word the shopper typed
    assert found.product.title == title and found.availability == cpb.AVAILABILITY_IN_STOCK
    assert found.price.units == 3 and found.model_scores["relevance"] > 0
    assert not [
        x for x in page.degradations if x.stage in (cpb.STAGE_RANKING, cpb.STAGE_RETRIEVAL, cpb.STAGE_EXPLANATION)
    ]
    # Explained like any product: its query match names the words its title holds.
    assert found.explanation.sentence and found.explanation.score == pytest.approx(found.score, abs=1e-3)
    assert any(e.type == cpb.EVIDENCE_TYPE_QUERY_MATCH and word in e.text for e in found.explanation.evidence)
    # Both halves of retrieval hold it: its invented word (lexical) and its meaning (dense, by its whole title).
    cands = retrieval.RetrieveQueryCandidates(
        qpb.RetrieveQueryCandidatesRequest(query=title, page_size=200), timeout=10
    ).candidates
    sources = next({r.source for r in c.source_ranks} for c in cands if c.product.product_id == pid)
    assert {cpb.CANDIDATE_SOURCE_LEXICAL, cpb.CANDIDATE_SOURCE_DENSE} <= sources


def test_retitled_and_sold_out_products_follow_the_catalogue(gateway, catalog, retrieval):
    old, new = "zq" + uuid.uuid4().hex[:6], "zq" + uuid.uuid4().hex[:6]
    pid = f"N-{uuid.uuid4().hex[:8]}"

    def ids(word: str) -> list[str]:
        return [
            r.product.product_id
            for r in gateway.Search(gpb.SearchRequest(query=word, page_size=10), timeout=10).results
        ]

    def by_words(word: str) -> set[str]:
        """What the lexical index finds for the word (dense neighbours of an invented word are any products)."""
        cands = retrieval.RetrieveQueryCandidates(
            qpb.RetrieveQueryCandidatesRequest(query=word, page_size=200), timeout=10
        ).candidates
        return {
            c.product.product_id for c in cands if any(r.source == cpb.CANDIDATE_SOURCE_LEXICAL for r in c.source_ranks)
        }

    _upsert(catalog, pid, f"{old.upper()} TEA CUP")
    _wait_for(lambda: pid in ids(old), "the first title")
    _upsert(catalog, pid, f"{new.upper()} TEA CUP")
    _wait_for(lambda: pid in ids(new) and pid not in by_words(old), "the new title replacing the old")
    _upsert(catalog, pid, f"{new.upper()} TEA CUP", cpb.AVAILABILITY_OUT_OF_STOCK)
    _wait_for(lambda: pid not in ids(new), "leaving search when sold out")


def test_new_product_joins_the_recommend_pool_of_customers_who_bought_like_it(catalog, retrieval, gateway):
    """Customer 17850's latest purchase, retitled with an invented word, as a new product: among their Recommend
    candidates (dense neighbours of their latest purchases), and Recommend still ranks without degradation."""
    pool = retrieval.RetrieveUserCandidates(
        qpb.RetrieveUserCandidatesRequest(user_id="17850", page_size=1000), timeout=10
    ).candidates
    bought = next(c for c in pool if any(r.source == cpb.CANDIDATE_SOURCE_REPEAT_PURCHASE for r in c.source_ranks))
    pid = f"N-{uuid.uuid4().hex[:8]}"
    _upsert(catalog, pid, f"{bought.product.title} ZQ{uuid.uuid4().hex[:4].upper()}")

    def candidates() -> list[str]:
        return [
            c.product.product_id
            for c in retrieval.RetrieveUserCandidates(
                qpb.RetrieveUserCandidatesRequest(user_id="17850", page_size=1000), timeout=10
            ).candidates
        ]

    _wait_for(lambda: pid in candidates(), "the new product among the customer's candidates")
    page = gateway.Recommend(gpb.RecommendRequest(user_id="17850", page_size=20), timeout=10)
    assert page.results and not [x for x in page.degradations if x.stage == cpb.STAGE_RANKING]
