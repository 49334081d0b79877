"""The A/B readout: events joined on their response's token, rates with intervals, differences from control."""

import math

import pytest

from tools.ab_report import markdown, newcombe, readout, wilson


def _events():
    out = []
    for i in range(10):  # control: 10 responses shown, 4 clicked, 2 carted, 1 bought
        t = f"c{i}"
        out += [(t, "fused", "IMPRESSION", "A"), (t, "fused", "IMPRESSION", "B")]
        if i < 4:
            out.append((t, "fused", "CLICK", "A"))
        if i < 2:
            out += [(t, "fused", "ADD_TO_CART", "A"), (t, "fused", "ADD_TO_CART", "B")]
        if i < 1:
            out.append((t, "fused", "PURCHASE", "A"))
    for i in range(5):  # treatment: 5 responses, every one clicked twice
        t = f"g{i}"
        out += [(t, "gnn_only", "IMPRESSION", "A"), (t, "gnn_only", "CLICK", "A"), (t, "gnn_only", "CLICK", "A")]
    return out


def test_counts_per_arm_and_rates_per_response():
    arms, diffs = readout(_events(), ["fused", "gnn_only"])
    control, other = arms
    assert (control.variant, control.responses) == ("fused", 10)
    assert control.events == {"IMPRESSION": 20, "CLICK": 4, "ADD_TO_CART": 4, "PURCHASE": 1}
    assert [(r.successes, r.trials) for r in control.rates.values()] == [(4, 10), (2, 10), (1, 10)]
    assert other.events["CLICK"] == 10 and other.rates["CLICK"].successes == 5  # a response counts once
    click = next(d for d in diffs if d.stage == "CLICK")
    assert (click.variant, click.control) == ("gnn_only", "fused")
    assert click.diff == pytest.approx(0.6) and click.low < 0.6 < click.high <= 1.0
    table = markdown(arms, diffs, "test")
    assert "| fused | 10 | 20 | 4 | 4 | 1 |" in table and "+60.0 pts" in table


def test_wilson_and_newcombe_match_published_values():
    r = wilson(81, 263)  # Newcombe (1998), table I
    assert (round(r.low, 4), round(r.high, 4)) == (0.2553, 0.3662)
    d, low, high = newcombe(wilson(48, 80), wilson(56, 70))  # Newcombe (1998), method 10: 56/70 - 48/80
    assert round(d, 4) == 0.2 and (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    assert math.isnan(wilson(0, 0).rate)


def test_an_arm_not_in_the_configured_order_is_still_reported():
    arms, _ = readout([("x", "new_arm", "IMPRESSION", "A")], ["fused"])
    assert [a.variant for a in arms] == ["new_arm"]


def test_recommend_events_split_per_shelf_their_token_names():
    from libs.experiments import AttributionTokens

    from libs import domain as d
    from tools.ab_report import by_shelf

    tokens = AttributionTokens(b"k" * 32)
    again, discover, search = (
        tokens.issue("fused", d.Shelf.BUY_AGAIN),
        tokens.issue("fused", d.Shelf.DISCOVER),
        tokens.issue("fused"),
    )
    events = [
        (again, "fused", "IMPRESSION", "A"),
        (discover, "fused", "IMPRESSION", "B"),
        (again, "fused", "CLICK", "A"),
        (search, "fused", "CLICK", "C"),
    ]
    groups = by_shelf(events)
    assert list(groups) == ["BUY_AGAIN", "DISCOVER"]
    arms, _ = readout(groups["BUY_AGAIN"], ["fused"])
    assert arms[0].responses == 1 and arms[0].rates["CLICK"].rate == 1.0
    assert by_shelf([("not.a-token", "fused", "CLICK", "A")]) == {}


def test_explained_responses_split_per_explanation_arm_across_variants():
    from libs.experiments import AttributionTokens

    from tools.ab_report import by_explanation_arm

    tokens = AttributionTokens(b"k" * 32)
    none_a, none_b, sentence, plain = (
        tokens.issue("fused", explanation="none"),
        tokens.issue("gnn_only", explanation="none"),
        tokens.issue("fused", explanation="sentence"),
        tokens.issue("fused"),
    )
    events = [
        (none_a, "fused", "IMPRESSION", "A"),
        (none_b, "gnn_only", "IMPRESSION", "B"),
        (none_b, "gnn_only", "CLICK", "B"),
        (sentence, "fused", "IMPRESSION", "A"),
        (sentence, "fused", "CLICK", "A"),
        (plain, "fused", "CLICK", "C"),
    ]
    arms, diffs = readout(by_explanation_arm(events), ["none", "sentence"])
    assert [(a.variant, a.responses, a.rates["CLICK"].successes) for a in arms] == [("none", 2, 1), ("sentence", 1, 1)]
    assert {(d.variant, d.control) for d in diffs} == {("sentence", "none")}
