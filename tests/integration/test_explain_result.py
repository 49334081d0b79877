"""On-demand "Why this?" (GatewayService.ExplainResult) and the explanation sentences, on the real stack: Triton, the
four services over gRPC, the trained models and the event store."""

from __future__ import annotations

import math
import uuid

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from shop.common.v1 import common_pb2 as cpb
from shop.gateway.v1 import gateway_service_pb2 as pb

from libs import convert
from tests.unit.explain.sentence_facts import repeated_claims, unsupported

QUERIES = ("tea set", "lunch bag", "heart lantern", "christmas decoration")
CUSTOMERS = ("17850", "13047", "12583", "14688", "15311")


def _pages(gateway, explain: bool = False):
    for user in CUSTOMERS[:3]:
        yield gateway.Recommend(pb.RecommendRequest(user_id=user, page_size=20, explain=explain), timeout=20)
    for query, user in zip(QUERIES, CUSTOMERS):
        yield gateway.Search(pb.SearchRequest(query=query, user_id=user, page_size=20, explain=explain), timeout=20)
    yield gateway.Search(pb.SearchRequest(query="lantern", page_size=20, explain=explain), timeout=20)  # anonymous


def check_explains_the_served_scores(gateway, resp, picks=(0, 7, 19)) -> None:
    """ExplainResult on some results of `resp`: the served score, exactly, and a waterfall that adds up."""
    results = [resp.results[i] for i in picks if i < len(resp.results)]
    out = gateway.ExplainResult(
        pb.ExplainResultRequest(
            attribution_token=resp.attribution_token, product_ids=[r.product.product_id for r in results]
        ),
        timeout=20,
    )
    assert [r.product.product_id for r in out.results] == [r.product.product_id for r in results]
    assert out.variant == resp.variant and set(map(tuple, _versions(out))) == set(map(tuple, _versions(resp)))
    for served, got in zip(results, out.results):
        e = got.explanation
        assert got.score == served.score and got.product.title == served.product.title
        assert abs(e.score - served.score) <= 1e-6, (served.product.product_id, e.score, served.score)
        total = math.fsum(ev.contribution for ev in e.evidence) + e.interaction
        # float32 on the wire: each of up to 62 contributions carries its own rounding
        assert total == pytest.approx(e.score - e.baseline, abs=1e-5 * max(1.0, abs(e.score)))
        assert unsupported(e.sentence, convert.explanation_from_pb(e).evidence) == []


def _versions(resp):
    return [(v.name, v.version) for v in resp.model_versions]


def test_on_demand_explanations_are_of_the_served_scores_on_search_and_recommend(gateway):
    for resp in _pages(gateway):
        assert resp.results and not resp.degradations
        check_explains_the_served_scores(gateway, resp)


def test_events_recorded_after_the_response_do_not_change_its_explanation(gateway):
    user = "12748"
    first = gateway.Recommend(pb.RecommendRequest(user_id=user, page_size=20), timeout=20)
    product = first.results[0].product.product_id
    gateway.RecordEvents(
        pb.RecordEventsRequest(
            events=[
                pb.Event(
                    event_id=str(uuid.uuid4()),
                    user_id=user,
                    product_id=product,
                    type=cpb.EVENT_TYPE_PURCHASE,
                    attribution_token=first.attribution_token,
                )
            ]
        ),
        timeout=10,
    )
    second = gateway.Recommend(pb.RecommendRequest(user_id=user, page_size=20), timeout=20)
    changed = {r.product.product_id: r.score for r in second.results}
    assert any(changed.get(r.product.product_id) != r.score for r in first.results)  # the purchase counts now
    check_explains_the_served_scores(gateway, first)  # ... but not for the response served before it
    check_explains_the_served_scores(gateway, second)


def _details(error: grpc.RpcError) -> status_pb2.Status:
    return status_pb2.Status.FromString(dict(error.trailing_metadata())["grpc-status-details-bin"])


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    info = error_details_pb2.ErrorInfo()
    assert _details(error).details[-1].Unpack(info)
    return info


def _bad_fields(info) -> list[str]:
    bad = error_details_pb2.BadRequest()
    assert _details(info.value).details[0].Unpack(bad)
    return [v.field for v in bad.field_violations]


def test_bad_tokens_and_products_are_refused_naming_the_field(gateway):
    resp = gateway.Search(pb.SearchRequest(query="tea set", page_size=5), timeout=20)
    body, _, signature = resp.attribution_token.partition(".")
    tampered = ("A" if body[0] != "A" else "B") + body[1:] + "." + signature
    cases = [
        (pb.ExplainResultRequest(attribution_token=tampered, product_ids=["85123A"]), ["attribution_token"]),
        (pb.ExplainResultRequest(product_ids=["85123A"]), ["attribution_token"]),
        (
            pb.ExplainResultRequest(
                attribution_token=resp.attribution_token, product_ids=[resp.results[0].product.product_id, "NOPE"]
            ),
            ["product_ids[1]"],
        ),
        (pb.ExplainResultRequest(attribution_token=resp.attribution_token, product_ids=[]), ["product_ids"]),
    ]
    for request, fields in cases:
        with pytest.raises(grpc.RpcError) as info:
            gateway.ExplainResult(request, timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and _bad_fields(info) == fields
    check_explains_the_served_scores(gateway, resp, picks=(4,))  # and it keeps serving


def test_every_fact_in_a_sentence_is_read_from_its_evidence_and_no_claim_repeats(gateway):
    seen = 0
    for resp in _pages(gateway, explain=True):
        assert not resp.degradations
        for r in resp.results:
            evidence = convert.explanation_from_pb(r.explanation).evidence
            assert unsupported(r.explanation.sentence, evidence) == [], r.explanation.sentence
            assert repeated_claims(r.explanation.sentence, evidence) == [], r.explanation.sentence
            seen += 1
    assert seen >= 100
