import base64
from collections import Counter

import pytest

from libs.errors import InvalidArgumentError
from libs.experiments import AttributionTokens, Variants


def test_assignment_is_stable_and_follows_shares():
    variants = Variants.parse("fused:0.8, gnn_only:0.2")
    assert variants.assign("17850") == variants.assign("17850")
    counts = Counter(variants.assign(str(u)) for u in range(12000, 22000))
    assert 0.77 < counts["fused"] / 10000 < 0.83


def test_anonymous_users_get_the_first_arm():
    assert Variants.parse("fused:1,gnn_only:1").assign("") == "fused"


def test_parse_rejects_empty():
    with pytest.raises(ValueError):
        Variants.parse(" , ")


def test_explore_arms_parse_and_typos_fail_at_start_up():
    variants = Variants.parse("fused:0.9,fused+explore=0.3:0.1")
    assert [name for name, _ in variants.arms] == ["fused", "fused+explore=0.3"]
    for bad in ("fused:0.9,fussed:0.1", "fused+explore=3:1"):
        with pytest.raises(ValueError, match="variant"):
            Variants.parse(bad)


KEY = b"k" * 32


def test_token_round_trip_and_malformed():
    tokens = AttributionTokens(KEY)
    assert tokens.variant_of(tokens.issue("gnn_only"), "t") == "gnn_only"
    assert tokens.variant_of("", "t") == ""
    with pytest.raises(InvalidArgumentError, match="events\\[0\\].attribution_token"):
        tokens.variant_of("!!garbage", "events[0].attribution_token")


def _forge(payload: bytes, signature: str = "AAAA") -> str:
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + signature


@pytest.mark.parametrize(
    "token",
    [
        AttributionTokens(b"x" * 32).issue("fused"),  # another key (another deployment, or a restart without a key)
        _forge(b'{"v":"gnn_only"}'),  # unsigned: the old format, or a client making its own
        _forge(b"[" * 100_000),  # deeply nested JSON: must not reach the parser (was RecursionError -> INTERNAL)
        "é" * 40 + ".é",  # non-ASCII
        "a" * 257,  # oversized
    ],
)
def test_tokens_not_issued_with_our_key_are_invalid_argument(token):
    with pytest.raises(InvalidArgumentError) as info:
        AttributionTokens(KEY).variant_of(token, "t")
    assert [v.field for v in info.value.violations] == ["t"]


def test_tampered_variant_is_rejected():
    tokens = AttributionTokens(KEY)
    body, signature = tokens.issue("fused").split(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).replace(b"fused", b"gnn_only")
    with pytest.raises(InvalidArgumentError):
        tokens.variant_of(_forge(payload, signature), "t")


def test_short_keys_are_refused():
    with pytest.raises(ValueError):
        AttributionTokens(b"short")


def test_tokens_that_could_smuggle_control_characters_are_rejected():
    tokens = AttributionTokens(KEY)
    good = tokens.issue("fused")
    body, signature = good.split(".")
    for bad in (good + "\x00", body + "\x00." + signature, body[:5] + "\n" + body[5:] + "." + signature):
        with pytest.raises(InvalidArgumentError, match="^t: "):
            tokens.variant_of(bad, "t")


def test_explanation_arms_are_assigned_independently_of_the_variant():
    from libs.experiments import ExplanationArms

    variants, shown = Variants.parse("fused:0.5,gnn_only:0.5"), ExplanationArms.parse("none:0.5,sentence:0.5")
    pairs = Counter((variants.assign(str(u)), shown.assign(str(u))) for u in range(12000, 22000))
    # Independent: each of the 4 combinations holds about a quarter (the same salt would give 2 halves).
    assert len(pairs) == 4 and all(0.23 < n / 10000 < 0.27 for n in pairs.values())
    assert shown.assign("") == "none"
    for bad in ("none:1,short:1", " , "):
        with pytest.raises(ValueError):
            ExplanationArms.parse(bad)


def test_what_each_explanation_arm_shows():
    from libs import domain as d
    from libs.experiments import present, shows_explanations

    full = d.Explanation([d.Evidence(d.EvidenceKind.POPULARITY, 0.1 * i) for i in range(8, 0, -1)], "Because.", 0.6)
    assert present("full", full).evidence == full.evidence
    top3 = present("top3", full)
    assert top3.evidence == full.evidence[:3] and top3.sentence == "Because." and len(full.evidence) == 8
    assert present("sentence", full).evidence == [] and present("sentence", full).sentence == "Because."
    assert present("none", full) is None and not shows_explanations("none") and shows_explanations("sentence")


def test_the_token_carries_the_explanation_arm():
    from libs.experiments import explanation_arm_of_stored

    tokens = AttributionTokens(KEY)
    assert explanation_arm_of_stored(tokens.issue("fused", explanation="top3")) == "top3"
    assert explanation_arm_of_stored(tokens.issue("fused")) == ""
    assert tokens.variant_of(tokens.issue("gnn_only", explanation="none"), "t") == "gnn_only"
