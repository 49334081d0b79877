import numpy as np
import pytest
import scipy.sparse as sp

from libs import domain as d
from libs.errors import InvalidArgumentError
from libs.shelves import (
    MAX_CONTEXT_PRODUCTS,
    buy_again_parts,
    check_request,
    context_items,
    discover_parts,
    frequently_bought_together,
)

FBT, SIMILAR = d.Shelf.FREQUENTLY_BOUGHT_TOGETHER, d.Shelf.SIMILAR_ITEMS


def _fields(exc: pytest.ExceptionInfo) -> list[str]:
    return [v.field for v in exc.value.violations]


@pytest.mark.parametrize("shelf", [d.Shelf.FOR_YOU, d.Shelf.BUY_AGAIN, d.Shelf.DISCOVER])
def test_personal_shelves_need_a_user_and_no_context(shelf):
    assert check_request(shelf, "17850", []) == []
    with pytest.raises(InvalidArgumentError) as exc:
        check_request(shelf, "", ["85123A"])
    assert _fields(exc) == ["user_id", "context_product_ids"]
    assert "SHELF_" + shelf.value in exc.value.violations[0].description


def test_context_shelves_take_an_optional_user_and_deduplicate_the_context():
    assert check_request(FBT, "", ["85123A", "71053", "85123A"]) == ["85123A", "71053"]
    assert check_request(SIMILAR, "17850", ["85123A"]) == ["85123A"]


@pytest.mark.parametrize(
    "shelf,context,field",
    [
        (FBT, [], "context_product_ids"),
        (FBT, [f"P{i}" for i in range(MAX_CONTEXT_PRODUCTS + 1)], "context_product_ids"),
        (SIMILAR, [], "context_product_ids"),
        (SIMILAR, ["85123A", "71053"], "context_product_ids"),
        (FBT, ["85123A", "has space"], "context_product_ids[1]"),
        (SIMILAR, ["x" * 33], "context_product_ids[0]"),
    ],
)
def test_context_counts_and_ids_are_checked_with_the_field_named(shelf, context, field):
    with pytest.raises(InvalidArgumentError) as exc:
        check_request(shelf, "", context)
    assert _fields(exc) == [field]


def test_context_items_keeps_known_products_in_order():
    assert context_items({"a": 0, "b": 1, "c": 2}, ["c", "zz", "a", "c"]) == [2, 0]


def test_discover_parts_drop_the_history_and_everything_bought():
    parts = [("history", np.array([3, 1])), ("co_purchase", np.array([1, 4, 5])), ("popular", np.array([3, 6, 4]))]
    out = discover_parts(parts, np.array([1, 3, 1]))
    assert [name for name, _ in out] == ["co_purchase", "popular"]
    assert [items.tolist() for _, items in out] == [[4, 5], [6, 4]]
    again = buy_again_parts(parts, np.array([1, 3, 6]))
    assert [(name, items.tolist()) for name, items in again] == [
        ("history", [3, 1]),
        ("co_purchase", [1]),
        ("popular", [3, 6]),
    ]


def test_frequently_bought_together_sums_counts_over_the_context_and_excludes_it():
    co = sp.csr_matrix(
        np.array([[0, 2, 5, 1, 0], [2, 0, 0, 3, 0], [5, 0, 0, 0, 0], [1, 3, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=np.int32)
    )
    # Item 3 with items 0 and 1: 1 + 3 = 4 shared invoices; item 2 only with 0 (5).
    assert frequently_bought_together(co, [0, 1], 10) == [(2, 5.0), (3, 4.0)]
    assert frequently_bought_together(co, [0], 2) == [(2, 5.0), (1, 2.0)]
    assert frequently_bought_together(co, [4], 10) == []
    assert frequently_bought_together(co, [], 10) == []
