"""Storefront query features of Search and Recommend (issue 23, item 6): which products may be served (a filter),
in which order, and the pages of one ranked list. Pure logic: no protobuf (libs.convert reads the wire), no I/O.

- The filter is checked twice with the same `matches`: in retrieval, which over-fetches until enough matching
  candidates come back (so a filtered page is full whenever enough products match), and in the gateway against
  its own copy of the catalogue, which may be a poll interval ahead of retrieval's.
- Pages: the first page ranks a list up to MAX_RESULTS deep once; the gateway keeps it (libs.on_demand) and later
  pages are slices of that kept list, so they neither repeat nor skip a product whatever happens in between.
- Page tokens are signed (HMAC-SHA256 under a key derived from the attribution-token key) and bound to the request
  by a fingerprint of everything that shapes the list, so a token cannot be replayed with another query or filter.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from libs.domain import Availability, Money
from libs.errors import FieldViolation, InvalidArgumentError, invalid
from libs.validation import product_id_problem

MAX_RESULTS = 200  # how deep paging goes: the first page ranks and keeps this many results, later pages slice them
MAX_EXCLUDED = 100
MAX_CATEGORIES = 20
MAX_CATEGORY_CHARS = 100
MAX_PAGE_TOKEN_CHARS = 256
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class OrderBy(enum.Enum):
    """Mirrors shop.common.v1.OrderBy (UNSPECIFIED reads as RELEVANCE)."""

    RELEVANCE = "RELEVANCE"
    PRICE_ASCENDING = "PRICE_ASCENDING"
    PRICE_DESCENDING = "PRICE_DESCENDING"


@dataclass(frozen=True)
class ProductFilter:
    """Which products may be served. The default serves in-stock products (and the bundle's products the catalogue
    has no row for, as before the catalogue existed)."""

    min_price: Money | None = None
    max_price: Money | None = None
    include_out_of_stock: bool = False
    exclude_product_ids: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()

    def matches(self, product_id: str, content) -> bool:
        """`content`: the catalogue's libs.products.model.ProductContent of the product, or None when it has no row
        (no price, no categories: such a product fails any price or category condition)."""
        if product_id in self.exclude_product_ids:
            return False
        if content is None:
            return self.min_price is None and self.max_price is None and not self.categories
        if content.availability is not Availability.IN_STOCK and not (
            self.include_out_of_stock and content.availability is Availability.OUT_OF_STOCK
        ):
            return False
        if self.min_price is not None or self.max_price is not None:
            if not _in_range(content.price, self.min_price, self.max_price):
                return False
        return not self.categories or not self.categories.isdisjoint(content.categories)

    def key(self) -> str:
        """A canonical text of the filter (the same filter, sent in any order, gives the same key)."""
        return json.dumps(
            [
                _money_key(self.min_price),
                _money_key(self.max_price),
                self.include_out_of_stock,
                sorted(self.exclude_product_ids),
                sorted(self.categories),
            ],
            separators=(",", ":"),
        )


DEFAULT_FILTER = ProductFilter()


def _money_key(m: Money | None) -> list | None:
    return None if m is None else [m.currency_code, m.units, m.nanos]


def _in_range(price: Money | None, low: Money | None, high: Money | None) -> bool:
    if price is None:
        return False
    for bound in (low, high):
        if bound is not None and bound.currency_code != price.currency_code:
            return False
    amount = (price.units, price.nanos)
    return (low is None or amount >= (low.units, low.nanos)) and (high is None or amount <= (high.units, high.nanos))


def check_filter(
    min_price: Money | None,
    max_price: Money | None,
    include_out_of_stock: bool,
    exclude_product_ids: Sequence[str],
    categories: Sequence[str],
    field: str = "filter",
    violations: Sequence[FieldViolation] = (),
) -> ProductFilter:
    """The filter, or InvalidArgumentError naming every bad field under `field` (e.g. filter.categories[2]).
    `violations`: those already found while converting the prices (libs.convert.filter_from_pb)."""
    problems = list(violations)
    if min_price is not None and max_price is not None and not problems:
        if min_price.currency_code != max_price.currency_code:
            problems.append(FieldViolation(f"{field}.max_price", "must have the currency_code of min_price"))
        elif (min_price.units, min_price.nanos) > (max_price.units, max_price.nanos):
            problems.append(FieldViolation(f"{field}.max_price", "must not be below min_price"))
    if len(exclude_product_ids) > MAX_EXCLUDED:
        problems.append(
            FieldViolation(f"{field}.exclude_product_ids", f"at most {MAX_EXCLUDED} (got {len(exclude_product_ids)})")
        )
    else:
        for i, product_id in enumerate(exclude_product_ids):
            if why := product_id_problem(product_id):
                problems.append(FieldViolation(f"{field}.exclude_product_ids[{i}]", why))
    if len(categories) > MAX_CATEGORIES:
        problems.append(FieldViolation(f"{field}.categories", f"at most {MAX_CATEGORIES} (got {len(categories)})"))
    else:
        for i, category in enumerate(categories):
            if not category.strip() or len(category) > MAX_CATEGORY_CHARS or CONTROL_RE.search(category):
                problems.append(
                    FieldViolation(
                        f"{field}.categories[{i}]",
                        f"must be 1..{MAX_CATEGORY_CHARS} characters, not blank, without control characters",
                    )
                )
    if problems:
        raise InvalidArgumentError(problems)
    return ProductFilter(
        min_price,
        max_price,
        include_out_of_stock,
        frozenset(exclude_product_ids),
        frozenset(c.strip() for c in categories),
    )


def ordered(items: Sequence, price_of: Callable[[str], Money | None], order_by: OrderBy) -> list:
    """`items` (in relevance order, each with a product_id and, when ranked, model_scores) in `order_by`'s order.

    Search stays relevance first (libs.relevance): a price order sorts within each grade of query relevance (the
    `relevance` model score: titles with every word typed, then partial matches, then semantic neighbours), so
    "lantern" by price lists lanterns by price before cheaper neighbours; Recommend has one grade. Within a grade,
    products without a price come last; the sort is stable, so equal prices keep their relevance order."""
    if order_by is OrderBy.RELEVANCE:
        return list(items)
    sign = 1 if order_by is OrderBy.PRICE_ASCENDING else -1

    def key(item) -> tuple:
        grade = -(getattr(item, "model_scores", None) or {}).get("relevance", 0.0)
        price = price_of(item.product_id)
        if price is None:
            return (grade, 1, "", 0, 0)
        # Prices in different currencies are not comparable; grouping by currency keeps the order deterministic.
        return (grade, 0, price.currency_code, sign * price.units, sign * price.nanos)

    return sorted(items, key=key)


def fingerprint(*parts: object) -> str:
    """A digest of everything that shapes a ranked list (kind of call, query, user, shelf, filter, order, page
    size): a page token is good only for a request with the same fingerprint."""
    text = json.dumps([str(p) for p in parts], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class PagePosition:
    response_id: str  # the kept list's id (the attribution token's response id)
    offset: int  # index of the page's first result in that list


class PageTokens:
    """`payload.signature` like the attribution tokens, under its own key (so neither kind of token passes for the
    other), checked before the payload is parsed."""

    _SIG_BYTES = 16

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the page-token key must be at least 16 bytes")
        self._key = key

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest()[: self._SIG_BYTES])

    def issue(self, position: PagePosition, request_fingerprint: str) -> str:
        payload = json.dumps(
            {"r": position.response_id, "o": position.offset, "f": request_fingerprint}, separators=(",", ":")
        ).encode()
        return f"{_b64(payload)}.{self._sign(payload)}"

    def read(self, token: str, request_fingerprint: str, field: str = "page_token") -> PagePosition:
        """Where the page starts; INVALID_ARGUMENT naming `field` for a token this deployment did not issue, one
        tampered with, or one issued for another request."""
        if len(token) > MAX_PAGE_TOKEN_CHARS:
            raise invalid(field, f"must be at most {MAX_PAGE_TOKEN_CHARS} characters (got {len(token)})")
        foreign = invalid(field, "is not a next_page_token issued by this service")
        if not TOKEN_RE.fullmatch(token):
            raise foreign
        body, _, signature = token.partition(".")
        try:
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            raise foreign from None
        if not payload or not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            raise foreign
        fields = json.loads(payload)  # ours: signed by this key
        if fields["f"] != request_fingerprint:
            raise invalid(
                field,
                "was issued for another request: send the same query, user_id, shelf, context_product_ids, filter, "
                "order_by and page_size as the first page",
            )
        return PagePosition(str(fields["r"]), int(fields["o"]))


@dataclass
class Browse:
    """What a Search or Recommend call asks beyond its query or shelf: the filter, the order and the page."""

    product_filter: ProductFilter = field(default_factory=ProductFilter)
    order_by: OrderBy = OrderBy.RELEVANCE
    page_token: str = ""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
