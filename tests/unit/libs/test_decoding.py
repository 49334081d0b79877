from shop.catalog.v1 import catalog_service_pb2 as pb
from shop.common.v1 import common_pb2 as cpb

from libs.decoding import non_utf8_fields


def test_non_utf8_strings_are_named_where_they_are():
    raw = pb.UpsertProductsRequest(
        products=[
            pb.Product(product_id="A", title="fine"),
            pb.Product(product_id="B", title="MARK", categories=["ok", "CATX"]),
        ]
    ).SerializeToString()
    raw = raw.replace(b"MARK", b"\xff\xfeRK").replace(b"CATX", b"\xc3ATX")
    assert non_utf8_fields(pb.UpsertProductsRequest, raw) == ["products[1].title", "products[1].categories[1]"]
    scored = cpb.ScoredProduct(
        model_scores={"fused": 1.0}, explanation=cpb.Explanation(sentence="SENT")
    ).SerializeToString()
    assert non_utf8_fields(cpb.ScoredProduct, scored.replace(b"SENT", b"\xffENT")) == ["explanation.sentence"]


def test_other_damage_names_nothing():
    assert non_utf8_fields(pb.GetProductRequest, b"\x0a\x05ab") == []  # truncated
    assert non_utf8_fields(pb.GetProductRequest, pb.GetProductRequest(product_id="ü").SerializeToString()) == []


def test_an_overwritten_occurrence_of_a_singular_string_is_named_too():
    from shop.gateway.v1 import gateway_service_pb2 as gpb

    # query twice: protobuf keeps the last ("ok") but refuses the message for the first, which is not UTF-8
    raw = b"\x0a\x02\xff\xfe" + b"\x0a\x02ok"
    assert non_utf8_fields(gpb.SearchRequest, raw) == ["query"]
