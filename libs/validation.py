"""Input validation shared by servicers: every failure names the offending field."""

from __future__ import annotations

import re
from collections.abc import Sized

from libs.errors import invalid

USER_ID_RE = re.compile(r"^[0-9]{1,16}$")
# A StockCode: printable, no whitespace (the dataset's look like "85123A"; a shop's own may be longer).
MAX_PRODUCT_ID_CHARS = 32
PRODUCT_ID_RE = re.compile(rf"[^\s\x00-\x1f\x7f]{{1,{MAX_PRODUCT_ID_CHARS}}}")
MAX_QUERY_CHARS = 512
# Inner RPCs carry one user's recent events from the gateway: at most 200 (libs/events.py reads no more), as
# the protos say.
MAX_RECENT_EVENTS = 200


def user_id(value: str, field: str = "user_id", required: bool = False) -> str:
    """The dataset's CustomerID without ".0": digits only, 1..16 characters."""
    value = value.strip()
    if not value:
        if required:
            raise invalid(field, "is required")
        return ""
    if not USER_ID_RE.match(value):
        raise invalid(field, "must be 1..16 digits (the CustomerID without '.0', e.g. '17850')")
    return value


def product_id_problem(value: str) -> str | None:
    """Why `value` cannot be a product id, or None when it can."""
    if not PRODUCT_ID_RE.fullmatch(value):
        return f"must be 1..{MAX_PRODUCT_ID_CHARS} characters without whitespace or control characters"
    return None


def query(value: str, field: str = "query", required: bool = True) -> str:
    """Trimmed query text, 1..512 characters."""
    text = " ".join(value.split())
    if not text:
        if required:
            raise invalid(field, "must not be empty")
        return ""
    if len(text) > MAX_QUERY_CHARS:
        raise invalid(field, f"must be at most {MAX_QUERY_CHARS} characters (got {len(text)})")
    return text


def page_size(value: int, default: int, maximum: int, field: str = "page_size") -> int:
    """0 = default; above the maximum = coerced (as Google's Retail API documents); negative = error."""
    if value < 0:
        raise invalid(field, "must not be negative")
    if value == 0:
        return default
    return min(value, maximum)


def at_most(values: Sized, maximum: int, field: str) -> None:
    """A repeated field's length bound: INVALID_ARGUMENT beyond it, before any element is read."""
    if len(values) > maximum:
        raise invalid(field, f"at most {maximum} elements (got {len(values)})")
