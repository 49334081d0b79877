from shop.gateway.v1 import gateway_service_pb2 as gpb
from shop.ranking.v1 import ranking_service_pb2 as kpb

from libs.wire_paths import non_utf8_field


def _delimited(number: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


def test_names_the_nested_repeated_string_that_is_not_utf8():
    good = _delimited(1, b"e1") + _delimited(4, b"85123A")
    bad = _delimited(1, b"e2") + _delimited(4, b"\xff\xfe")
    raw = _delimited(1, good) + bytes([2 << 3 | 0, 5]) + _delimited(1, good) + _delimited(1, bad)
    assert non_utf8_field(gpb.RecordEventsRequest.DESCRIPTOR, raw) == "events[2].product_id"


def test_top_level_and_repeated_scalar_strings():
    assert non_utf8_field(gpb.SearchRequest.DESCRIPTOR, _delimited(2, b"\xc3")) == "user_id"
    raw = _delimited(3, b"A") + _delimited(3, b"\xe2\x82")
    assert non_utf8_field(kpb.RankCandidatesRequest.DESCRIPTOR, raw) == "product_ids[1]"


def test_valid_truncated_and_group_bytes_name_nothing():
    desc = gpb.SearchRequest.DESCRIPTOR
    assert non_utf8_field(desc, _delimited(1, "lantern é".encode())) is None
    assert non_utf8_field(desc, _delimited(1, b"lantern")[:4]) is None
    assert non_utf8_field(desc, bytes([9 << 3 | 3]) * 200) is None
