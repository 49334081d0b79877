import pytest

from libs import convert
from libs import domain as d


def test_scored_item_round_trip():
    item = d.ScoredItem("85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 0.5, {"fused": 0.5},
                        [d.Source.LEXICAL, d.Source.REPEAT_PURCHASE],
                        d.Explanation([d.Evidence(d.EvidenceKind.PAST_PURCHASE, 0.25, "71053", "WHITE METAL LANTERN")],
                                      "Because you bought WHITE METAL LANTERN", 0.75))
    assert convert.scored_from_pb(convert.scored_to_pb(item)) == item


def test_every_domain_enum_maps_to_the_proto():
    for s in d.Source:
        assert convert.source_from_pb(convert.source_to_pb(s)) is s
    for st in d.Stage:
        assert convert.degradation_from_pb(convert.degradation_to_pb(d.Degradation(st, "x"))).stage is st


def test_user_events_skip_unknown_types():
    ok = convert.user_event_to_pb(d.UserEvent("85123A", d.EventKind.PURCHASE, 1_300_000_000.0, 2))
    unknown = convert.user_event_to_pb(d.UserEvent("85123A", d.EventKind.CLICK, 1.0, 1))
    unknown.type = 99
    events = convert.user_events_from_pb([ok, unknown])
    assert events == [d.UserEvent("85123A", d.EventKind.PURCHASE, pytest.approx(1_300_000_000.0), 2)]


def test_candidate_round_trip():
    # Values exact in float32, so the round trip compares equal.
    c = d.Candidate("71053", "WHITE METAL LANTERN", 0.25, [d.SourceRank(d.Source.LEXICAL, 1, 2.5),
                                                          d.SourceRank(d.Source.DENSE, 3, 0.75)], ["lantern"])
    assert convert.candidate_from_pb(convert.candidate_to_pb(c)) == c
