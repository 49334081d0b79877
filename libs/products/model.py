"""Products of the living catalogue: the values, and the rules every stored product satisfies.

Prices are google.type.Money: exact integers (units + nanos), never floats, so a stored price reads back as sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from libs.domain import Availability, Money
from libs.errors import FieldViolation, InvalidArgumentError
from libs.validation import product_id_problem

MAX_PER_CALL = 500
MAX_TITLE_CHARS = 200
MAX_DESCRIPTION_CHARS = 5000
MAX_CATEGORIES = 50
MAX_CATEGORY_CHARS = 100
MAX_NANOS = 999_999_999
MAX_UNITS = 10**12  # a trillion in any currency is a typo, and it keeps units * 1e9 + nanos inside int64
CURRENCY_RE = re.compile(r"[A-Z]{3}")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

# Search and Recommend serve only these (products the catalogue does not know are served as before).
SERVABLE = frozenset({Availability.IN_STOCK})


@dataclass(frozen=True)
class ProductContent:
    """What a caller writes; stored products add their times and change sequence."""

    product_id: str
    title: str
    price: Money | None
    availability: Availability | None  # None: UNSPECIFIED or a value this build does not know
    description: str = ""
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Product:
    content: ProductContent
    create_time: float  # epoch seconds
    update_time: float
    change_seq: int

    @property
    def product_id(self) -> str:
        return self.content.product_id

    @property
    def servable(self) -> bool:
        return self.content.availability in SERVABLE


@dataclass
class UpsertResult:
    products: list[Product]  # as stored, in request order
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class DeleteResult:
    deleted: int = 0
    unchanged: int = 0
    unknown: list[str] = field(default_factory=list)  # ids the store has no row for (nothing was changed)


def _text_problem(value: str, max_chars: int, required: bool) -> str | None:
    if not value.strip():
        return "is required" if required else None
    if len(value) > max_chars:
        return f"must be at most {max_chars} characters (got {len(value)})"
    if CONTROL_RE.search(value):
        return "must not contain control characters"
    return None


def money_problems(money: Money | None, at: str) -> list[FieldViolation]:
    if money is None:
        return [FieldViolation(at, "is required")]
    problems = []
    if not CURRENCY_RE.fullmatch(money.currency_code):
        problems.append(FieldViolation(f"{at}.currency_code", "must be three upper-case letters (ISO 4217, e.g. GBP)"))
    if not 0 <= money.units <= MAX_UNITS:
        problems.append(FieldViolation(f"{at}.units", f"must be 0..{MAX_UNITS} (a price is never negative)"))
    if not 0 <= money.nanos <= MAX_NANOS:
        # Money's sign rule: nanos carry the units' sign; prices are never negative, so 0..999,999,999.
        problems.append(FieldViolation(f"{at}.nanos", f"must be 0..{MAX_NANOS} (a price is never negative)"))
    return problems


def content_problems(p: ProductContent, at: str) -> list[FieldViolation]:
    """Everything wrong with one product, each violation naming its field under `at` (e.g. products[3])."""
    problems = []
    if why := product_id_problem(p.product_id):
        problems.append(FieldViolation(f"{at}.product_id", why))
    if why := _text_problem(p.title, MAX_TITLE_CHARS, required=True):
        problems.append(FieldViolation(f"{at}.title", why))
    if why := _text_problem(p.description, MAX_DESCRIPTION_CHARS, required=False):
        problems.append(FieldViolation(f"{at}.description", why))
    problems += money_problems(p.price, f"{at}.price")
    if p.availability is None:
        problems.append(FieldViolation(f"{at}.availability", "must be a known Availability other than UNSPECIFIED"))
    if len(p.categories) > MAX_CATEGORIES:
        problems.append(FieldViolation(f"{at}.categories", f"at most {MAX_CATEGORIES} (got {len(p.categories)})"))
    for j, category in enumerate(p.categories[:MAX_CATEGORIES]):
        if why := _text_problem(category, MAX_CATEGORY_CHARS, required=True):
            problems.append(FieldViolation(f"{at}.categories[{j}]", why))
    return problems


def _batch_size(n: int, field_name: str) -> list[FieldViolation]:
    if not 1 <= n <= MAX_PER_CALL:
        return [FieldViolation(field_name, f"must contain 1..{MAX_PER_CALL} elements (got {n})")]
    return []


def normalise(p: ProductContent) -> ProductContent:
    """The stored form: title trimmed and its whitespace runs collapsed, categories trimmed and deduplicated."""
    categories = tuple(dict.fromkeys(c.strip() for c in p.categories))
    return ProductContent(
        p.product_id, " ".join(p.title.split()), p.price, p.availability, p.description.strip(), categories
    )


def check_upsert(products: Sequence[ProductContent]) -> list[ProductContent]:
    """The batch in stored form, or InvalidArgumentError naming every bad field (nothing may be stored then)."""
    if problems := _batch_size(len(products), "products"):
        raise InvalidArgumentError(problems)
    first: dict[str, int] = {}
    for i, p in enumerate(products):
        at = f"products[{i}]"
        problems += content_problems(p, at)
        if p.product_id in first:
            problems.append(FieldViolation(f"{at}.product_id", f"repeats products[{first[p.product_id]}]"))
        first.setdefault(p.product_id, i)
    if problems:
        raise InvalidArgumentError(problems)
    return [normalise(p) for p in products]


def check_delete(product_ids: Sequence[str]) -> list[str]:
    """Distinct ids in request order, or InvalidArgumentError naming the bad ones."""
    if problems := _batch_size(len(product_ids), "product_ids"):
        raise InvalidArgumentError(problems)
    problems = [
        FieldViolation(f"product_ids[{i}]", why) for i, p in enumerate(product_ids) if (why := product_id_problem(p))
    ]
    if problems:
        raise InvalidArgumentError(problems)
    return list(dict.fromkeys(product_ids))
