import random

import pytest
from google.protobuf import message_factory, unknown_fields
from google.protobuf.message import DecodeError
from shop.common.v1 import common_pb2
from shop.explanation.v1 import explanation_service_pb2 as xpb
from shop.gateway.v1 import gateway_service_pb2 as gpb
from shop.ranking.v1 import ranking_service_pb2 as kpb
from shop.retrieval.v1 import retrieval_service_pb2 as rpb

from libs import convert
from libs.errors import InvalidArgumentError
from loadtest.fuzz import MAX_MESSAGE, hostile_request, names_a_field

SERVICES = [
    gpb.DESCRIPTOR.services_by_name["GatewayService"],
    rpb.DESCRIPTOR.services_by_name["RetrievalService"],
    kpb.DESCRIPTOR.services_by_name["RankingService"],
    xpb.DESCRIPTOR.services_by_name["ExplanationService"],
]
METHODS = [m for s in SERVICES for m in s.methods]


def _parsed(payload: bytes, cls):
    try:
        return cls.FromString(payload)
    except DecodeError:
        return None


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.full_name)
def test_requests_are_varied_partly_unparseable_and_sized_around_grpcs_limit(method):
    cls = message_factory.GetMessageClass(method.input_type)
    rng = random.Random(1)
    requests = [hostile_request(method.input_type, rng) for _ in range(300)]
    assert len({r.payload for r in requests}) > 150
    assert all(r.oversize == (len(r.payload) > MAX_MESSAGE) for r in requests)
    assert 0 < sum(r.oversize for r in requests) < 40
    receivable = [r for r in requests if not r.oversize]
    parsed = [m for r in receivable if (m := _parsed(r.payload, cls)) is not None]
    assert len(receivable) // 2 < len(parsed) < len(receivable)  # most reach the servicer, some cannot be parsed
    assert sum(bool(r.hostile_fields) for r in requests) > 150
    assert sum(r.malformed for r in requests) > 10
    assert any(len(unknown_fields.UnknownFieldSet(m)) for m in parsed)  # a newer client's fields


def test_record_events_carry_timestamps_outside_their_range_and_unknown_enum_numbers():
    record = gpb.DESCRIPTOR.services_by_name["GatewayService"].methods_by_name["RecordEvents"]
    rng = random.Random(3)
    bad_times = unknown_types = 0
    for _ in range(300):
        msg = _parsed(hostile_request(record.input_type, rng).payload, gpb.RecordEventsRequest)
        for e in msg.events if msg is not None else []:
            unknown_types += e.type not in common_pb2.EventType.values()
            try:
                convert.timestamp_from_pb(e.event_time, "event_time")
            except InvalidArgumentError:
                bad_times += 1
    assert bad_times > 20
    assert unknown_types > 20


def test_nan_and_infinite_floats_reach_float_fields():
    rank = kpb.DESCRIPTOR.services_by_name["RankingService"].methods_by_name["RankCandidates"]
    rng = random.Random(4)
    values = [
        m.diversity
        for _ in range(300)
        if (m := _parsed(hostile_request(rank.input_type, rng).payload, kpb.RankCandidatesRequest))
    ]
    assert any(v != v for v in values)
    assert any(v in (float("inf"), -float("inf")) for v in values)


def test_field_paths_are_judged_against_the_descriptor():
    desc = gpb.RecordEventsRequest.DESCRIPTOR
    assert names_a_field(desc, "events")
    assert names_a_field(desc, "events[3].event_time")
    assert names_a_field(desc, "events[0].event_time.nanos")
    assert not names_a_field(desc, "request")
    assert not names_a_field(desc, "events[0].nope")
    assert not names_a_field(desc, "events[0].user_id[1]")  # not repeated
    assert not names_a_field(desc, "")
