"""Storefront query features as pure logic (libs.storefront, libs.convert's filter): filter validation naming
fields, matching, price order, signed page tokens."""

from __future__ import annotations

import pytest
from google.type import money_pb2
from shop.common.v1 import common_pb2 as pb

from libs import convert
from libs.domain import Availability, Money
from libs.errors import InvalidArgumentError
from libs.experiments import AttributionTokens
from libs.products.model import ProductContent
from libs.storefront import MAX_EXCLUDED, OrderBy, PagePosition, PageTokens, ProductFilter, fingerprint, ordered


def _gbp(units: int, nanos: int = 0, currency: str = "GBP") -> money_pb2.Money:
    return money_pb2.Money(currency_code=currency, units=units, nanos=nanos)


def _fields(f: pb.ProductFilter) -> list[str]:
    with pytest.raises(InvalidArgumentError) as info:
        convert.filter_from_pb(f)
    return [v.field for v in info.value.violations]


def test_the_default_filter_serves_in_stock_only():
    f = convert.filter_from_pb(pb.ProductFilter())
    assert f == ProductFilter()
    assert f.matches("A", _content(Availability.IN_STOCK))
    assert not f.matches("A", _content(Availability.OUT_OF_STOCK))
    assert not f.matches("A", _content(Availability.DISCONTINUED))
    assert f.matches("A", None)  # the bundle's product, no catalogue row: served as before


@pytest.mark.parametrize(
    ("msg", "fields"),
    [
        (pb.ProductFilter(min_price=_gbp(-1)), ["filter.min_price.units"]),
        (pb.ProductFilter(max_price=_gbp(1, -5)), ["filter.max_price.nanos"]),
        (pb.ProductFilter(max_price=_gbp(1, 1_000_000_000)), ["filter.max_price.nanos"]),
        (pb.ProductFilter(min_price=_gbp(1, currency="gbp")), ["filter.min_price.currency_code"]),
        (pb.ProductFilter(min_price=_gbp(1), max_price=_gbp(2, currency="EUR")), ["filter.max_price"]),
        (pb.ProductFilter(min_price=_gbp(3), max_price=_gbp(2, 999_999_999)), ["filter.max_price"]),
        (
            pb.ProductFilter(exclude_product_ids=["ok", "has space", ""]),
            ["filter.exclude_product_ids[1]", "filter.exclude_product_ids[2]"],
        ),
        (pb.ProductFilter(exclude_product_ids=["x"] * (MAX_EXCLUDED + 1)), ["filter.exclude_product_ids"]),
        (
            pb.ProductFilter(categories=["Kitchen", " ", "a\x00b", "c" * 101]),
            ["filter.categories[1]", "filter.categories[2]", "filter.categories[3]"],
        ),
        (pb.ProductFilter(categories=["c"] * 21), ["filter.categories"]),
    ],
)
def test_bad_filters_name_every_bad_field(msg, fields):
    assert _fields(msg) == fields


def test_every_violation_at_once_and_equal_bounds_are_fine():
    bad = pb.ProductFilter(min_price=_gbp(-1), exclude_product_ids=[" "], categories=[""])
    assert _fields(bad) == ["filter.min_price.units", "filter.exclude_product_ids[0]", "filter.categories[0]"]
    same = convert.filter_from_pb(pb.ProductFilter(min_price=_gbp(2, 500), max_price=_gbp(2, 500)))
    assert same.min_price == same.max_price == Money("GBP", 2, 500)


def _content(availability=Availability.IN_STOCK, price=Money("GBP", 2, 500_000_000), categories=()):
    return ProductContent("A", "A TITLE", price, availability, "", tuple(categories))


def test_filter_conditions_all_hold():
    f = ProductFilter(
        Money("GBP", 2), Money("GBP", 3), include_out_of_stock=True, categories=frozenset({"Kitchen", "Garden"})
    )
    kitchen = ("Kitchen",)
    assert f.matches("A", _content(categories=kitchen))
    assert f.matches("A", _content(Availability.OUT_OF_STOCK, categories=kitchen))
    assert not f.matches("A", _content(Availability.DISCONTINUED, categories=kitchen))
    assert f.matches("A", _content(price=Money("GBP", 3), categories=kitchen))  # inclusive
    assert not f.matches("A", _content(price=Money("GBP", 3, 1), categories=kitchen))
    assert not f.matches("A", _content(price=Money("GBP", 1, 999_999_999), categories=kitchen))
    assert not f.matches("A", _content(price=Money("EUR", 2, 500), categories=kitchen))  # other currency
    assert not f.matches("A", _content(price=None, categories=kitchen))
    assert not f.matches("A", _content(categories=("Toys",)))
    assert not f.matches("A", None)  # no row: no price, no categories
    assert not ProductFilter(exclude_product_ids=frozenset({"A"})).matches("A", _content())


class _Item:
    def __init__(self, product_id: str, relevance: float | None = None) -> None:
        self.product_id = product_id
        self.model_scores = {} if relevance is None else {"relevance": relevance, "fused": 0.5}


def test_price_orders_are_stable_and_put_unpriced_products_last():
    prices = {"a": Money("GBP", 3), "b": None, "c": Money("GBP", 1, 5), "d": Money("GBP", 3), "e": Money("GBP", 1)}
    items = [_Item(p) for p in "abcde"]
    ids = lambda order: [i.product_id for i in ordered(items, prices.get, order)]  # noqa: E731
    assert ids(OrderBy.RELEVANCE) == list("abcde")
    assert ids(OrderBy.PRICE_ASCENDING) == ["e", "c", "a", "d", "b"]
    assert ids(OrderBy.PRICE_DESCENDING) == ["a", "d", "c", "e", "b"]


def test_search_stays_relevance_first_a_price_order_sorts_within_each_grade():
    prices = {"a": Money("GBP", 3), "b": Money("GBP", 1), "c": None, "d": Money("GBP", 2), "e": Money("GBP", 0, 5)}
    # a, b and c hold every word typed (20), d a part (5), e none (a semantic neighbour)
    items = [_Item("a", 20.0), _Item("c", 20.0), _Item("b", 20.0), _Item("d", 5.0), _Item("e", 0.0)]
    assert [i.product_id for i in ordered(items, prices.get, OrderBy.PRICE_ASCENDING)] == ["b", "a", "c", "d", "e"]
    assert [i.product_id for i in ordered(items, prices.get, OrderBy.PRICE_DESCENDING)] == ["a", "b", "c", "d", "e"]


def test_order_by_reads_unspecified_as_relevance_and_refuses_unknown_values():
    assert convert.order_by_from_pb(pb.ORDER_BY_UNSPECIFIED) is OrderBy.RELEVANCE
    assert convert.order_by_from_pb(pb.ORDER_BY_PRICE_DESCENDING) is OrderBy.PRICE_DESCENDING
    with pytest.raises(InvalidArgumentError) as info:
        convert.order_by_from_pb(99)
    assert info.value.violations[0].field == "order_by"


def test_filter_survives_the_wire_to_retrieval():
    f = ProductFilter(Money("GBP", 1), None, True, frozenset({"B", "A"}), frozenset({"x"}))
    assert convert.filter_from_pb(convert.filter_to_pb(f)) == f


def test_fingerprint_sees_every_part_and_filter_keys_ignore_order():
    a = ProductFilter(exclude_product_ids=frozenset({"A", "B"}))
    assert a.key() == convert.filter_from_pb(pb.ProductFilter(exclude_product_ids=["B", "A"])).key()
    base = fingerprint("search", "lantern", "17850", 10, a.key(), OrderBy.RELEVANCE)
    assert base == fingerprint("search", "lantern", "17850", 10, a.key(), OrderBy.RELEVANCE)
    for other in (
        fingerprint("search", "lanterns", "17850", 10, a.key(), OrderBy.RELEVANCE),
        fingerprint("search", "lantern", "", 10, a.key(), OrderBy.RELEVANCE),
        fingerprint("search", "lantern", "17850", 20, a.key(), OrderBy.RELEVANCE),
        fingerprint("search", "lantern", "17850", 10, ProductFilter().key(), OrderBy.RELEVANCE),
        fingerprint("search", "lantern", "17850", 10, a.key(), OrderBy.PRICE_ASCENDING),
    ):
        assert other != base


def _bad_token(tokens: PageTokens, token: str, request: str = "f1") -> str:
    with pytest.raises(InvalidArgumentError) as info:
        tokens.read(token, request)
    assert [v.field for v in info.value.violations] == ["page_token"]
    return info.value.violations[0].description


def test_page_tokens_verify_and_refuse_tampered_foreign_and_replayed_ones():
    key = AttributionTokens(b"k" * 32)
    tokens = PageTokens(key.derived_key("page_token"))
    token = tokens.issue(PagePosition("abc123", 20), "f1")
    assert tokens.read(token, "f1") == PagePosition("abc123", 20)
    body, _, sig = token.partition(".")
    assert "not a next_page_token" in _bad_token(tokens, body[:-2] + "AA." + sig)
    assert "not a next_page_token" in _bad_token(tokens, body + "." + sig[:-1] + ("A" if sig[-1] != "A" else "B"))
    foreign = PageTokens(AttributionTokens(b"o" * 32).derived_key("page_token")).issue(PagePosition("abc123", 20), "f1")
    assert "not a next_page_token" in _bad_token(tokens, foreign)
    assert "not a next_page_token" in _bad_token(tokens, key.issue("fused"))  # an attribution token is not one
    assert "another request" in _bad_token(tokens, token, request="f2")
    assert "at most" in _bad_token(tokens, "x" * 300)
    assert "not a next_page_token" in _bad_token(tokens, "no.pe\x00")
