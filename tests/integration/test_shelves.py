"""Each shelf through the real gateway -> retrieval -> ranking (Triton) -> explanation, on loopback: results of the
shelf's kind, explained, with the shelf in the attribution token."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pandas as pd
import pytest
import scipy.sparse as sp
from shop.common.v1 import common_pb2 as cpb
from shop.gateway.v1 import gateway_service_pb2 as pb

from libs import convert
from libs.catalog.store import load_dataset
from libs.config import artifacts_dir
from libs.experiments import shelf_of_stored
from libs.catalog.prepare import copurchase_matrix
from tests.unit.explain.sentence_facts import repeated_claims, unsupported

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


@dataclass(frozen=True)
class Counts:
    item_index: pd.Index
    copurchase: sp.csr_matrix


@pytest.fixture(scope="module")
def features():
    """The co-purchase counts the serving stack's shelf reads, rebuilt from the data as the feature store builds them
    (customers' and guests' invoices)."""
    ds = load_dataset(artifacts_dir())
    cols = ["user_id", "item_idx", "invoice_no", "ts"]
    sales = pd.concat([ds.purchases[cols], ds.guest_sales[cols]]) if not ds.guest_sales.empty else ds.purchases[cols]
    return Counts(pd.Index(ds.items["product_id"]), copurchase_matrix(sales, ds.n_items))


def _explained_on_demand(gateway, resp, picks=(0, 4)):
    """ExplainResult on some results: every measured piece, which must still add up to score - baseline."""
    out = gateway.ExplainResult(
        pb.ExplainResultRequest(
            attribution_token=resp.attribution_token, product_ids=[resp.results[i].product.product_id for i in picks]
        ),
        timeout=20,
    )
    for r in out.results:
        e = r.explanation
        total = sum(ev.contribution for ev in e.evidence) + e.interaction
        assert total == pytest.approx(e.score - e.baseline, abs=1e-5 * max(1.0, abs(e.score)))
    return out


def _facts_hold(r) -> None:
    evidence = convert.explanation_from_pb(r.explanation).evidence
    assert unsupported(r.explanation.sentence, evidence) == [], r.explanation.sentence
    assert repeated_claims(r.explanation.sentence, evidence) == [], r.explanation.sentence


@pytest.mark.parametrize("user_id", ["", USER])
def test_frequently_bought_together_names_the_context_product_and_the_invoices_counted(gateway, features, user_id):
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
    context = [features.item_index.get_loc(p) for p in CONTEXT]
    for r in list(resp.results) + list(_explained_on_demand(gateway, resp).results):
        placed = [e for e in r.explanation.evidence if e.type == cpb.EVIDENCE_TYPE_BOUGHT_TOGETHER]
        assert len(placed) == 1 and placed[0].contribution == 0.0
        item = features.item_index.get_loc(r.product.product_id)
        shared = {p: int(features.copurchase[c, item]) for p, c in zip(CONTEXT, context)}
        # the context product it was bought together with most, and the invoices holding both
        assert placed[0].count == max(shared.values()) == shared[placed[0].product.product_id] > 0
        assert r.explanation.sentence.startswith(
            f"Because it was bought together with {placed[0].product.title} in {placed[0].count} order"
        )
        _facts_hold(r)


def test_similar_items_name_the_title_words_shared_with_the_context_product(gateway):
    resp = gateway.Recommend(
        pb.RecommendRequest(
            page_size=10, explain=True, shelf=cpb.SHELF_SIMILAR_ITEMS, context_product_ids=[CONTEXT[0]]
        ),
        timeout=20,
    )
    context_title = ""
    shared_somewhere = 0
    for r in list(resp.results) + list(_explained_on_demand(gateway, resp).results):
        placed = [e for e in r.explanation.evidence if e.type == cpb.EVIDENCE_TYPE_SHARES_WITH]
        assert len(placed) == 1 and placed[0].product.product_id == CONTEXT[0] and placed[0].contribution == 0.0
        context_title = placed[0].product.title
        words = placed[0].text.split()
        assert all(w.upper() in r.product.title.split() for w in words)
        shared_somewhere += bool(words)
        _facts_hold(r)
    assert shared_somewhere >= 5 and context_title == "WHITE HANGING HEART T-LIGHT HOLDER"


def test_buy_again_names_the_customers_own_repurchase_interval(gateway, purchases):
    resp = gateway.Recommend(
        pb.RecommendRequest(user_id=USER, page_size=20, explain=True, shelf=cpb.SHELF_BUY_AGAIN), timeout=20
    )
    intervals = 0
    for r in resp.results:
        own = [e for e in r.explanation.evidence if e.type == cpb.EVIDENCE_TYPE_REPEAT_PURCHASE and e.count >= 2]
        if own and own[0].interval_days and "you ordered it" in r.explanation.sentence:
            assert "about every" in r.explanation.sentence
            intervals += 1
        _facts_hold(r)
    assert intervals >= 1
    _explained_on_demand(gateway, resp)
