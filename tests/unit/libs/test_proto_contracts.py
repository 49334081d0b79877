"""Contract rules buf does not check: every request field says whether it is required (google.api.field_behavior)."""

import pytest
from google.api import field_behavior_pb2
from google.protobuf.descriptor import FieldDescriptor
from shop.explanation.v1 import explanation_service_pb2
from shop.gateway.v1 import gateway_service_pb2
from shop.ranking.v1 import ranking_service_pb2
from shop.retrieval.v1 import retrieval_service_pb2

SERVICES = [
    s
    for m in (gateway_service_pb2, retrieval_service_pb2, ranking_service_pb2, explanation_service_pb2)
    for s in m.DESCRIPTOR.services_by_name.values()
]


def _request_fields(message, seen=None):
    """Fields of a request message and of our messages nested in it (well-known types are not ours)."""
    seen = seen if seen is not None else set()
    if message.full_name in seen or message.full_name.startswith("google."):
        return
    seen.add(message.full_name)
    for f in message.fields:
        yield f
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            yield from _request_fields(f.message_type, seen)


@pytest.mark.parametrize("method", [m for s in SERVICES for m in s.methods], ids=lambda m: m.full_name)
def test_every_request_field_has_a_field_behavior(method):
    missing = [
        f.full_name
        for f in _request_fields(method.input_type)
        if not f.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    ]
    assert missing == []


def test_request_counts_are_named_page_size():
    # AIP-158: one name for "how many results"; other names survive only as deprecated aliases.
    other = [
        f.full_name
        for s in SERVICES
        for m in s.methods
        for f in _request_fields(m.input_type)
        if f.name in ("limit", "max_results", "count", "top_k") and not f.GetOptions().deprecated
    ]
    assert other == []
