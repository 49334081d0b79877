import pytest
from shop.common.v1 import common_pb2 as pb
from shop.retrieval.v1 import retrieval_service_pb2 as rpb

from libs import convert
from libs import domain as d

NEWER = 99  # an enum value added by a peer built from newer protos


def test_scored_item_round_trip():
    item = d.ScoredItem(
        "85123A",
        "WHITE HANGING HEART T-LIGHT HOLDER",
        0.5,
        {"fused": 0.5},
        [d.Source.LEXICAL, d.Source.REPEAT_PURCHASE],
        d.Explanation(
            [d.Evidence(d.EvidenceKind.PAST_PURCHASE, 0.25, "71053", "WHITE METAL LANTERN")],
            "Because you bought WHITE METAL LANTERN",
            0.75,
        ),
    )
    assert convert.scored_from_pb(convert.scored_to_pb(item)) == item


def test_evidence_facts_round_trip():
    """Counts, windows and times (microseconds since the epoch) survive the wire; no time stays unset."""
    facts = [
        d.Evidence(
            d.EvidenceKind.PAST_PURCHASE, 0.25, "71053", "WHITE METAL LANTERN", count=3, last_time=1320192000.25
        ),
        d.Evidence(d.EvidenceKind.SIMILAR_CUSTOMERS, 0.125, count=12, window_days=28),
    ]
    ex = d.Explanation(facts, "Because", 0.5)
    assert convert.explanation_from_pb(convert.explanation_to_pb(ex)) == ex
    assert not convert.explanation_to_pb(ex).evidence[1].HasField("last_time")


@pytest.mark.parametrize(
    ("cls", "proto_enum", "prefix"),
    [
        (d.Source, pb.CandidateSource, "CANDIDATE_SOURCE"),
        (d.EvidenceKind, pb.EvidenceType, "EVIDENCE_TYPE"),
        (d.Stage, pb.Stage, "STAGE"),
        (d.EventKind, pb.EventType, "EVENT_TYPE"),
    ],
)
def test_every_domain_enum_member_is_read_back(cls, proto_enum, prefix):
    assert [convert.enum_from_pb(cls, proto_enum.Value(f"{prefix}_{m.value}")) for m in cls] == list(cls)


def test_degradation_round_trip_keeps_the_model():
    x = d.Degradation(d.Stage.RANKING, "UNAVAILABLE: Triton not ready", "gnn_ranker")
    assert convert.degradation_to_pb(x) == pb.Degradation(stage=pb.STAGE_RANKING, reason=x.reason, model="gnn_ranker")
    assert convert.degradation_from_pb(convert.degradation_to_pb(x)) == x


@pytest.mark.parametrize("cls", [d.Source, d.EvidenceKind, d.Stage, d.EventKind])
def test_unspecified_and_newer_values_read_as_none(cls):
    assert convert.enum_from_pb(cls, 0) is None
    assert convert.enum_from_pb(cls, NEWER) is None


def test_newer_values_in_responses_keep_what_still_means_something():
    degraded = convert.degradation_from_pb(pb.Degradation(stage=NEWER, reason="down", model="m"))
    assert degraded == d.Degradation(None, "down", "m")
    assert convert.degradation_to_pb(degraded).stage == pb.STAGE_UNSPECIFIED

    scored = pb.ScoredProduct(product=pb.ProductRef(product_id="A"), sources=[pb.CANDIDATE_SOURCE_LEXICAL, NEWER])
    scored.explanation.evidence.add(type=NEWER, text="new kind", contribution=0.5)
    item = convert.scored_from_pb(scored)
    assert item.sources == [d.Source.LEXICAL]
    assert item.explanation.evidence == [d.Evidence(None, 0.5, text="new kind")]
    assert convert.scored_to_pb(item).explanation.evidence[0].type == pb.EVIDENCE_TYPE_UNSPECIFIED

    cand = rpb.Candidate(
        product=pb.ProductRef(product_id="A"),
        source_ranks=[rpb.SourceRank(source=NEWER, rank=1), rpb.SourceRank(source=pb.CANDIDATE_SOURCE_DENSE, rank=2)],
    )
    assert convert.candidate_from_pb(cand).source_ranks == [d.SourceRank(d.Source.DENSE, 2, 0.0)]


def test_recent_events_of_newer_types_are_skipped():
    ok = convert.user_event_to_pb(d.UserEvent("85123A", d.EventKind.PURCHASE, 1_300_000_000.0, 2))
    unknown = convert.user_event_to_pb(d.UserEvent("85123A", d.EventKind.CLICK, 1.0, 1))
    unknown.type = NEWER
    events = convert.user_events_from_pb([ok, unknown])
    assert events == [d.UserEvent("85123A", d.EventKind.PURCHASE, pytest.approx(1_300_000_000.0), 2)]


def test_out_of_range_event_times_are_invalid_argument_naming_the_element():
    import pytest
    from shop.common.v1 import common_pb2

    from libs.convert import user_events_from_pb
    from libs.errors import InvalidArgumentError

    good = common_pb2.UserEvent(product_id="A", type=common_pb2.EVENT_TYPE_PURCHASE)
    far = common_pb2.UserEvent(product_id="A", type=common_pb2.EVENT_TYPE_PURCHASE)
    far.event_time.seconds = 2**62
    negative_nanos = common_pb2.UserEvent(product_id="A", type=common_pb2.EVENT_TYPE_PURCHASE)
    negative_nanos.event_time.nanos = -1
    assert len(user_events_from_pb([good])) == 1
    for bad in (far, negative_nanos):
        with pytest.raises(InvalidArgumentError) as info:
            user_events_from_pb([good, bad])
        assert [v.field for v in info.value.violations] == ["recent_events[1].event_time"]


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(2**62, 0), (-(2**62), 0), (253_402_300_800, 0), (-62_135_596_801, 0), (0, -1), (0, 10**9), (0, -(2**31))],
)
def test_record_events_timestamps_outside_the_range_name_every_bad_event(seconds: int, nanos: int):
    from shop.common.v1 import common_pb2
    from shop.gateway.v1 import gateway_service_pb2 as gpb

    from libs.errors import InvalidArgumentError

    good = gpb.Event(event_id="a", type=common_pb2.EVENT_TYPE_PURCHASE, user_id="17850", product_id="85123A")
    bad = gpb.Event()
    bad.CopyFrom(good)
    bad.event_time.seconds, bad.event_time.nanos = seconds, nanos
    with pytest.raises(InvalidArgumentError) as info:
        convert.events_from_pb([good, bad, good, bad], now=1e9)
    assert [v.field for v in info.value.violations] == ["events[1].event_time", "events[3].event_time"]


def test_record_events_defaults_time_of_receipt_and_quantity_one():
    from shop.common.v1 import common_pb2
    from shop.gateway.v1 import gateway_service_pb2 as gpb

    edge = gpb.Event(event_id="b", type=common_pb2.EVENT_TYPE_CLICK, user_id="1", product_id="X")
    edge.event_time.seconds, edge.event_time.nanos = 253_402_300_799, 999_999_999  # the last valid instant
    plain = gpb.Event(
        event_id="a", type=common_pb2.EVENT_TYPE_PURCHASE, user_id="17850", product_id="85123A", attribution_token="t"
    )
    unknown = gpb.Event(event_id="c", type=NEWER, user_id="1", product_id="X")
    out = convert.events_from_pb([plain, edge, unknown], now=123.0)
    assert out[0] == ("a", "17850", "t", d.UserEvent("85123A", d.EventKind.PURCHASE, 123.0, 1))
    assert out[1][3].ts == pytest.approx(253_402_300_800.0)
    assert out[2] == ("c", "1", "", None)  # the core names the unknown type


def test_no_servicer_converts_a_well_known_type_itself():
    """Timestamp/Duration methods raise ValueError on values a client can send: libs/convert.py is their one home."""
    import re
    from pathlib import Path

    methods = re.compile(
        r"\.(To|From)(Nanoseconds|Microseconds|Milliseconds|Seconds|Datetime|Timedelta|"
        r"JsonString)\("
    )
    root = Path(__file__).resolve().parents[3]
    offenders = [
        f"{p.relative_to(root)}:{n}"
        for p in sorted((root / "services").rglob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if methods.search(line)
    ]
    assert offenders == []
