import base64
import json
from collections import Counter

import pytest

from libs.errors import InvalidArgumentError
from services.gateway.experiments import Variants, new_attribution_token, variant_of_token


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


def test_token_round_trip_and_malformed():
    assert variant_of_token(new_attribution_token("gnn_only"), "t") == "gnn_only"
    assert variant_of_token("", "t") == ""
    with pytest.raises(InvalidArgumentError, match="events\\[0\\].attribution_token"):
        variant_of_token("!!garbage", "events[0].attribution_token")


def test_tokens_that_could_smuggle_control_characters_are_rejected():
    def token(payload: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    assert variant_of_token(token({"v": "gnn_only"}), "t") == "gnn_only"
    for bad in (new_attribution_token("fused") + "\x00", token({"v": "a\u0000b"}), token({"v": ""}), "x" * 257):
        with pytest.raises(InvalidArgumentError, match="^t: "):
            variant_of_token(bad, "t")
