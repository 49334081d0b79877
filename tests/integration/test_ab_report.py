"""The A/B readout end to end: two arms serve real responses, a client records its funnel with their tokens through
RecordEvents, and `tools.ab_report` reads the counts back from the event store, per ranking variant and per
explanation arm (assigned independently)."""

from __future__ import annotations

import json
import uuid

import grpc
from shop.common.v1 import common_pb2 as cpb
from shop.gateway.v1 import gateway_service_pb2 as pb
from shop.gateway.v1 import gateway_service_pb2_grpc as pb_grpc

from libs.catalog.store import load_dataset
from libs.experiments import explanation_arm_of_stored
from tools import ab_report
from libs.stack import Stack

ARMS = "fused:0.5,gnn_only:0.5"
EXPLANATION_ARMS = "none:0.5,sentence:0.5"
PER_ARM = 3


def _event(kind: int, user: str, product: str, token: str) -> pb.Event:
    return pb.Event(
        event_id=str(uuid.uuid4()), type=kind, user_id=user, product_id=product, attribution_token=token, quantity=1
    )


def test_readout_counts_what_each_arm_recorded(tmp_path, monkeypatch):
    db = tmp_path / "events.sqlite3"
    users = load_dataset().customers["user_id"].astype(str).tolist()
    by_shown: dict[str, int] = {"none": 0, "sentence": 0}
    expected = {
        "fused": {"responses": 0, "IMPRESSION": 0, "CLICK": 0, "ADD_TO_CART": 0, "PURCHASE": 0},
        "gnn_only": {"responses": 0, "IMPRESSION": 0, "CLICK": 0, "ADD_TO_CART": 0, "PURCHASE": 0},
    }
    with (
        Stack(
            env={"SHOP_EVENTS_DB": str(db), "SHOP_VARIANTS": ARMS, "SHOP_EXPLANATION_ARMS": EXPLANATION_ARMS},
            log_dir=tmp_path / "logs",
        ) as stack,
        grpc.insecure_channel(stack.addresses["gateway"]) as channel,
    ):
        gateway = pb_grpc.GatewayServiceStub(channel)
        for user in users:
            if all(e["responses"] == PER_ARM for e in expected.values()):
                break
            reply = gateway.Recommend(pb.RecommendRequest(user_id=user, page_size=5, explain=True), timeout=20)
            counts = expected[reply.variant]
            if counts["responses"] == PER_ARM:
                continue
            arm = explanation_arm_of_stored(reply.attribution_token)
            # "none": no explanation at all; "sentence": the sentence without its evidence
            assert all(r.HasField("explanation") == (arm == "sentence") for r in reply.results), arm
            assert all(r.explanation.sentence and not r.explanation.evidence for r in reply.results if arm != "none")
            by_shown[arm] += 1
            shown = [r.product.product_id for r in reply.results]
            events = [_event(cpb.EVENT_TYPE_IMPRESSION, user, p, reply.attribution_token) for p in shown]
            k = counts["responses"]  # response k of its arm: k clicks, a cart and a purchase on the last one
            events += [_event(cpb.EVENT_TYPE_CLICK, user, p, reply.attribution_token) for p in shown[:k]]
            if k == PER_ARM - 1:
                events += [
                    _event(cpb.EVENT_TYPE_ADD_TO_CART, user, shown[0], reply.attribution_token),
                    _event(cpb.EVENT_TYPE_PURCHASE, user, shown[0], reply.attribution_token),
                ]
            gateway.RecordEvents(pb.RecordEventsRequest(events=events), timeout=10)
            counts["responses"] += 1
            counts["IMPRESSION"] += len(shown)
            counts["CLICK"] += k
            counts["ADD_TO_CART"] += k == PER_ARM - 1
            counts["PURCHASE"] += k == PER_ARM - 1

    monkeypatch.setenv("SHOP_EVENTS_DB", str(db))
    monkeypatch.setenv("SHOP_VARIANTS", ARMS)
    monkeypatch.setenv("SHOP_EXPLANATION_ARMS", EXPLANATION_ARMS)
    assert ab_report.main(["--out", str(tmp_path / "reports")]) == 0
    report = json.loads((tmp_path / "reports" / "ab.json").read_text())
    got = {a["variant"]: {"responses": a["responses"], **a["events"]} for a in report["arms"]}
    assert got == expected
    rates = {a["variant"]: {k: (r["successes"], r["trials"]) for k, r in a["rates"].items()} for a in report["arms"]}
    # clicked: responses 1 and 2 of each arm; carted and bought: the last one
    assert rates["fused"] == rates["gnn_only"] == {"CLICK": (2, 3), "ADD_TO_CART": (1, 3), "PURCHASE": (1, 3)}
    assert [d["stage"] for d in report["differences"]] == ["CLICK", "ADD_TO_CART", "PURCHASE"]
    assert (tmp_path / "reports" / "ab.png").stat().st_size > 0
    explained = report["explanation_arms"]["arms"]
    assert {a["variant"]: a["responses"] for a in explained} == {k: n for k, n in by_shown.items() if n}
    assert sum(by_shown.values()) == 2 * PER_ARM
