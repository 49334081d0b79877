"""Each shelf through the real gateway -> retrieval -> ranking (Triton) -> explanation, on loopback: results of the
shelf's kind, explained, with the shelf in the attribution token."""

from __future__ import annotations

import grpc
import pytest
from shop.common.v1 import common_pb2 as cpb
from shop.gateway.v1 import gateway_service_pb2 as pb

from libs.catalog.store import load_dataset
from libs.config import artifacts_dir
from libs.experiments import shelf_of_stored

USER = "12352"  # 57 distinct products in the dataset; no other test records events for this customer
CONTEXT = ["85123A", "84879"]  # two of the best sellers, often bought together with others


@pytest.fixture(scope="module")
def purchases():
    """The products each customer bought: the dataset the serving stack reads (no events are recorded for USER)."""
    p = load_dataset(artifacts_dir()).purchases
    return p.groupby("user_id")["product_id"].agg(set)


def _ids(resp: pb.RecommendResponse) -> list[str]:
    return [r.product.product_id for r in resp.results]


def _check_page(resp: pb.RecommendResponse, shelf: str, n: int) -> None:
    assert len(resp.results) == n and not resp.degradations, resp.degradations
    assert shelf_of_stored(resp.attribution_token) == shelf
    scores = [r.score for r in resp.results]
    assert scores == sorted(scores, reverse=True)
    for r in resp.results:
        assert r.explanation.sentence and r.explanation.evidence, r
        assert {"gnn_ranker", "transformer_ranker", "fused"} <= set(r.model_scores)


def test_buy_again_serves_only_products_the_customer_bought(gateway, purchases):
    resp = gateway.Recommend(
        pb.RecommendRequest(user_id=USER, page_size=20, explain=True, shelf=cpb.SHELF_BUY_AGAIN), timeout=20
    )
    _check_page(resp, "BUY_AGAIN", 20)
    assert set(_ids(resp)) <= purchases[USER]
    assert all(cpb.CANDIDATE_SOURCE_REPEAT_PURCHASE in r.sources for r in resp.results)  # USER's are all in the pool


def test_discover_serves_no_product_the_customer_bought(gateway, purchases):
    resp = gateway.Recommend(
        pb.RecommendRequest(user_id=USER, page_size=20, explain=True, shelf=cpb.SHELF_DISCOVER), timeout=20
    )
    _check_page(resp, "DISCOVER", 20)
    assert not set(_ids(resp)) & purchases[USER]
    # The mixed list for the same customer does hold repeat purchases: the shelves differ.
    mixed = gateway.Recommend(pb.RecommendRequest(user_id=USER, page_size=20), timeout=20)
    assert set(_ids(mixed)) & purchases[USER]
    assert shelf_of_stored(mixed.attribution_token) == "FOR_YOU"


@pytest.mark.parametrize("user_id", ["", USER])
def test_frequently_bought_together_excludes_the_context(gateway, user_id):
    resp = gateway.Recommend(
        pb.RecommendRequest(
            user_id=user_id,
            page_size=10,
            explain=True,
            shelf=cpb.SHELF_FREQUENTLY_BOUGHT_TOGETHER,
            context_product_ids=CONTEXT,
        ),
        timeout=20,
    )
    _check_page(resp, "FREQUENTLY_BOUGHT_TOGETHER", 10)
    assert not set(_ids(resp)) & set(CONTEXT)
    assert all(r.sources == [cpb.CANDIDATE_SOURCE_CO_PURCHASE] for r in resp.results)


def test_similar_items_excludes_the_context_product(gateway):
    resp = gateway.Recommend(
        pb.RecommendRequest(
            page_size=10, explain=True, shelf=cpb.SHELF_SIMILAR_ITEMS, context_product_ids=[CONTEXT[0]]
        ),
        timeout=20,
    )
    _check_page(resp, "SIMILAR_ITEMS", 10)
    assert CONTEXT[0] not in _ids(resp)
    assert all(r.sources == [cpb.CANDIDATE_SOURCE_DENSE] for r in resp.results)
    # Substitutes of a heart T-light holder: most titles say what it is.
    assert sum("HOLDER" in r.product.title or "T-LIGHT" in r.product.title for r in resp.results) >= 5


def test_a_context_product_the_models_do_not_know_gives_an_empty_page(gateway):
    resp = gateway.Recommend(
        pb.RecommendRequest(shelf=cpb.SHELF_SIMILAR_ITEMS, context_product_ids=["NO-SUCH-1"]), timeout=20
    )
    assert not resp.results and resp.attribution_token


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.RecommendRequest(shelf=cpb.SHELF_DISCOVER), "user_id"),
        (pb.RecommendRequest(shelf=cpb.SHELF_SIMILAR_ITEMS, context_product_ids=CONTEXT), "context_product_ids"),
        (
            pb.RecommendRequest(shelf=cpb.SHELF_FREQUENTLY_BOUGHT_TOGETHER, context_product_ids=["85123A", "a b"]),
            "context_product_ids[1]",
        ),
        (pb.RecommendRequest(user_id=USER, shelf=42), "shelf"),
    ],
)
def test_bad_shelf_requests_name_the_field_and_the_gateway_keeps_serving(gateway, request_, field):
    with pytest.raises(grpc.RpcError) as info:
        gateway.Recommend(request_, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in info.value.details()
    assert gateway.Recommend(pb.RecommendRequest(user_id=USER, page_size=1), timeout=10).results
