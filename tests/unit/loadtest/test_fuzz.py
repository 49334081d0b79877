import random

import pytest
from google.protobuf.message import DecodeError
from shop.gateway.v1 import gateway_service_pb2 as gpb

from loadtest.fuzz import hostile_request

METHODS = gpb.DESCRIPTOR.services_by_name["GatewayService"].methods


def _parses(payload: bytes, cls) -> bool:
    try:
        cls.FromString(payload)
    except DecodeError:
        return False
    return True


@pytest.mark.parametrize("method", list(METHODS), ids=lambda m: m.name)
def test_requests_are_varied_bounded_and_partly_unparseable(method):
    from google.protobuf import message_factory

    cls = message_factory.GetMessageClass(method.input_type)
    rng = random.Random(1)
    requests = [hostile_request(method.input_type, rng) for _ in range(300)]
    assert all(len(r.payload) < 4 * 1024 * 1024 for r in requests)
    assert len({r.payload for r in requests}) > 150
    parsed = sum(_parses(r.payload, cls) for r in requests)
    assert 0 < parsed < len(requests)  # some carry non-UTF-8 strings, most reach the servicer
    assert sum(bool(r.hostile_fields) for r in requests) > 150


def test_skipped_fields_are_never_set():
    rng = random.Random(2)
    record = gpb.DESCRIPTOR.services_by_name["GatewayService"].methods_by_name["RecordEvents"]
    for _ in range(200):
        r = hostile_request(record.input_type, rng, frozenset({"shop.gateway.v1.Event.event_time"}))
        if _parses(r.payload, gpb.RecordEventsRequest):
            assert not any(e.HasField("event_time") for e in gpb.RecordEventsRequest.FromString(r.payload).events)
