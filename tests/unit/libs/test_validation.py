import pytest

from libs import validation
from libs.errors import InvalidArgumentError


def test_user_id_accepts_customer_ids_and_optional_empty():
    assert validation.user_id(" 17850 ") == "17850"
    assert validation.user_id("") == ""


@pytest.mark.parametrize("bad", ["17850.0", "abc", "-1", "1" * 17, "12 34"])
def test_user_id_rejects_malformed_and_names_the_field(bad):
    with pytest.raises(InvalidArgumentError) as info:
        validation.user_id(bad, field="events[2].user_id")
    assert info.value.violations[0].field == "events[2].user_id"


def test_user_id_required():
    with pytest.raises(InvalidArgumentError, match="user_id: is required"):
        validation.user_id("  ", required=True)


def test_query_is_trimmed_and_bounded():
    assert validation.query("  white   lantern ") == "white lantern"
    with pytest.raises(InvalidArgumentError, match="query: must not be empty"):
        validation.query(" \t ")
    with pytest.raises(InvalidArgumentError, match="at most 512"):
        validation.query("x" * 1_000_000)


@pytest.mark.parametrize(("given", "expected"), [(0, 20), (1, 1), (100, 100), (101, 100), (10**9, 100)])
def test_page_size_default_and_coercion(given, expected):
    assert validation.page_size(given, default=20, maximum=100) == expected


def test_negative_page_size_is_invalid():
    with pytest.raises(InvalidArgumentError, match="page_size"):
        validation.page_size(-1, default=20, maximum=100)


def test_at_most_bounds_repeated_fields_and_names_them():
    validation.at_most([1] * 3, 3, "recent_events")
    with pytest.raises(InvalidArgumentError, match="recent_events: at most 3 elements \\(got 4\\)"):
        validation.at_most([1] * 4, 3, "recent_events")
