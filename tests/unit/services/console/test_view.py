import pytest
from shop.common.v1 import common_pb2 as pb
from shop.gateway.v1 import gateway_service_pb2 as gw

from services.console import view


def _explanation():
    ex = pb.Explanation(
        sentence="You bought it 3 times.", method="counterfactual-masking", score=2.5, baseline=1.0, interaction=-0.1
    )
    ex.evidence.add(
        type=pb.EVIDENCE_TYPE_REPEAT_PURCHASE,
        contribution=1.2,
        count=3,
        product=pb.ProductRef(product_id="85123A", title="WHITE HANGING HEART"),
    )
    ex.evidence.add(type=pb.EVIDENCE_TYPE_POPULARITY, contribution=0.6, count=120, window_days=28)
    ex.evidence.add(type=pb.EVIDENCE_TYPE_QUERY_SIMILAR, contribution=-0.2, text="lamp")
    ex.evidence[0].last_time.seconds = 1_320_000_000
    return ex


def test_waterfall_walks_from_the_baseline_to_the_served_score():
    bars = view.waterfall(_explanation())
    assert [b.kind for b in bars] == ["baseline", "evidence", "evidence", "evidence", "interaction", "score"]
    steps = bars[1:-1]
    assert all(a.end == pytest.approx(b.start) for a, b in zip(steps, steps[1:]))
    assert steps[0].start == 1.0 and steps[-1].end == pytest.approx(2.5)  # adds up to the score
    assert sum(b.value for b in steps) == pytest.approx(2.5 - 1.0)
    assert bars[2].label == "popularity" and bars[3].label == "similar to a query word: lamp"


def test_waterfall_folds_the_smallest_pieces_into_one_step_that_keeps_the_sum():
    bars = view.waterfall(_explanation(), top=1)
    assert [b.label for b in bars[1:3]] == ["you bought it before: WHITE HANGING HEART", "2 smaller pieces together"]
    assert bars[2].value == pytest.approx(0.6 - 0.2) and bars[-2].end == pytest.approx(2.5)


def test_timeline_lists_measured_purchases_newest_first_with_dates():
    rows = view.timeline(_explanation())
    assert rows == [
        {
            "title": "WHITE HANGING HEART",
            "orders": 3,
            "last": "2011-10-30",
            "contribution": pytest.approx(1.2),
            "kind": "you bought it before",
        }
    ]


@pytest.mark.parametrize(
    ("title", "query", "runs"),
    [
        ("WHITE METAL LANTERN", "lantern", [("WHITE METAL ", False), ("LANTERN", True)]),
        ("RED-LANTERN, small", "Red small", [("RED", True), ("-LANTERN, ", False), ("small", True)]),
        ("TEA SET", "", [("TEA SET", False)]),
    ],
)
def test_highlight_marks_the_query_words_in_the_title(title, query, runs):
    assert view.highlight(title, query) == runs
    assert "".join(t for t, _ in view.highlight(title, query)) == title


def test_cards_carry_price_availability_and_sources():
    r = pb.ScoredProduct(
        product=pb.ProductRef(product_id="X1", title="TEA CUP"),
        score=1.25,
        availability=pb.AVAILABILITY_IN_STOCK,
        sources=[pb.CANDIDATE_SOURCE_LEXICAL],
    )
    r.price.currency_code, r.price.units, r.price.nanos = "GBP", 4, 250_000_000
    card = view.cards([r], "tea")[0]
    assert (card.rank, card.price, card.availability, card.sources) == (1, "GBP 4.25", "in stock", ["lexical"])
    assert card.title_runs == [("TEA", True), (" CUP", False)]


def test_why_is_the_requested_result_of_an_on_demand_answer():
    answer = gw.ExplainResultResponse(variant="fused", model_versions=[pb.ModelVersion(name="gnn_ranker", version="1")])
    answer.results.add(product=pb.ProductRef(product_id="A", title="T"), score=2.5).explanation.CopyFrom(_explanation())
    out = view.why(answer, "A")
    assert out["score"] == 2.5 and out["baseline"] == 1.0 and out["variant"] == "fused"
    assert out["model_versions"] == ["gnn_ranker 1"] and len(out["bars"]) == 6 and out["sentence"]


def test_degradations_and_funnel_rows_read_as_words():
    d = [
        pb.Degradation(stage=pb.STAGE_RANKING, reason="unavailable", model="gnn_ranker"),
        pb.Degradation(stage=pb.STAGE_RETRIEVAL, reason="retrieval: no fresh events"),
    ]
    assert view.degradations(d) == ["ranking (gnn_ranker): unavailable", "retrieval: no fresh events"]
    report = {
        "arms": [
            {
                "variant": "fused",
                "responses": 10,
                "rates": {"CLICK": {"successes": 4, "trials": 10, "rate": 0.4, "low": 0.17, "high": 0.69}},
            }
        ]
    }
    assert view.funnel(report) == [
        {
            "arm": "fused",
            "responses": 10,
            "stage": "click",
            "rate": 0.4,
            "low": 0.17,
            "high": 0.69,
            "successes": 4,
            "trials": 10,
        }
    ]
