"""End to end through the real gateway -> real services -> real Triton, on loopback."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from shop.common.v1 import common_pb2 as cpb
from shop.gateway.v1 import gateway_service_pb2 as pb

NODE_CLIENT = Path(__file__).parent / "node_client"


def _field_violations(err: grpc.RpcError) -> list[str]:
    raw = dict(err.trailing_metadata())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(raw)
    bad, info = error_details_pb2.BadRequest(), error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(bad)
    assert status.details[-1].Unpack(info) and info.reason == "INVALID_ARGUMENT_FIELD"
    return [v.field for v in bad.field_violations]


def test_search_returns_ranked_explained_results(gateway):
    resp = gateway.Search(pb.SearchRequest(query="lantern", user_id="17850", page_size=5, explain=True), timeout=10)
    assert len(resp.results) == 5
    assert resp.attribution_token and resp.variant
    assert not resp.degradations, resp.degradations
    assert {v.name for v in resp.model_versions} >= {"gnn_ranker", "transformer_ranker"}
    scores = [r.score for r in resp.results]
    assert scores == sorted(scores, reverse=True)
    assert any("LANTERN" in r.product.title for r in resp.results)
    for r in resp.results:
        assert r.explanation.sentence and r.explanation.evidence
        assert set(r.model_scores) >= {"gnn_ranker", "transformer_ranker", "fused"}


def test_recommend_for_a_known_and_an_unknown_customer(gateway):
    known = gateway.Recommend(pb.RecommendRequest(user_id="17850", page_size=10), timeout=10)
    assert len(known.results) == 10 and not known.degradations
    new = gateway.Recommend(pb.RecommendRequest(user_id="99999999"), timeout=10)
    assert len(new.results) == 20  # default page size; cold start from popularity
    assert cpb.CANDIDATE_SOURCE_POPULARITY in new.results[0].sources


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.SearchRequest(query=""), "query"),
        (pb.SearchRequest(query="x" * 1_000_000), "query"),
        (pb.SearchRequest(query="lantern", page_size=-1), "page_size"),
        (pb.SearchRequest(query="lantern", user_id="17850.0"), "user_id"),
    ],
)
def test_search_bad_input_names_the_field(gateway, request_, field):
    with pytest.raises(grpc.RpcError) as info:
        gateway.Search(request_, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _field_violations(info.value) == [field]
    # ... and the server keeps serving.
    assert gateway.Search(pb.SearchRequest(query="lantern", page_size=1), timeout=10).results


@pytest.mark.parametrize("user_id", ["", "abc", " "])
def test_recommend_requires_a_well_formed_user(gateway, user_id):
    with pytest.raises(grpc.RpcError) as info:
        gateway.Recommend(pb.RecommendRequest(user_id=user_id), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _field_violations(info.value) == ["user_id"]


def test_page_size_zero_is_default_and_large_is_coerced(gateway):
    assert len(gateway.Search(pb.SearchRequest(query="bag", page_size=0), timeout=10).results) == 20
    assert len(gateway.Search(pb.SearchRequest(query="bag", page_size=100000), timeout=10).results) == 100


def test_unknown_event_type_is_invalid(gateway):
    event = pb.Event(event_id="x", user_id="17850", product_id="85123A")
    event.type = 42  # a value from a newer client
    with pytest.raises(grpc.RpcError) as info:
        gateway.RecordEvents(pb.RecordEventsRequest(events=[event]), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _field_violations(info.value) == ["events[0].type"]


def test_recorded_purchase_changes_the_next_recommendation(gateway):
    user = "12347"
    before = gateway.Recommend(pb.RecommendRequest(user_id=user, page_size=20, explain=True), timeout=10)
    shown = {r.product.product_id for r in before.results}
    # A product the customer never bought and was not recommended: a real catalogue item.
    target = "23084" if "23084" not in shown else "22086"
    event = pb.Event(
        event_id=str(uuid.uuid4()),
        type=cpb.EVENT_TYPE_PURCHASE,
        user_id=user,
        product_id=target,
        attribution_token=before.attribution_token,
        quantity=3,
    )
    ok = gateway.RecordEvents(pb.RecordEventsRequest(events=[event]), timeout=10)
    assert (ok.accepted_count, ok.duplicate_count) == (1, 0)
    again = gateway.RecordEvents(pb.RecordEventsRequest(events=[event]), timeout=10)
    assert (again.accepted_count, again.duplicate_count) == (0, 1)
    after = gateway.Recommend(pb.RecommendRequest(user_id=user, page_size=20, explain=True), timeout=10)
    assert [r.product.product_id for r in after.results] != [r.product.product_id for r in before.results]
    mentions = [
        e
        for r in after.results
        for e in r.explanation.evidence
        if e.product.product_id == target and e.contribution > 0
    ]
    assert mentions, "the new purchase should show in the explanations"


def test_node_client_calls_search(stack):
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=NODE_CLIENT, check=True, timeout=300)
    out = subprocess.run(
        ["node", "search.js", stack.addresses["gateway"], "lantern", "17850"],
        cwd=NODE_CLIENT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    import json

    body = json.loads(out)
    assert "error" not in body, body
    assert len(body["results"]) == 5 and body["attribution_token"]
