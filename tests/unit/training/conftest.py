"""Tiny hand-made purchase logs for the evaluation tests."""

from __future__ import annotations

import pandas as pd
import pytest

from training.evaluate.split import make_split

TITLES = [
    "WHITE METAL LANTERN",  # 0
    "RED METAL LANTERN",  # 1
    "HANGING GLASS LANTERN",  # 2
    "REGENCY CAKESTAND 3 TIER",  # 3
    "JUMBO BAG RED RETROSPOT",  # 4
    "LUNCH BAG RED RETROSPOT",  # 5
]


def items_frame(titles: list[str] = TITLES) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": [f"P{i}" for i in range(len(titles))],
            "title": titles,
            "price": [1.0] * len(titles),
            "n_orders": [99] * len(titles),  # whole-period count: must not reach scorers
        }
    )


def purchases_frame(rows: list[tuple[str, int, str, str]]) -> pd.DataFrame:
    """rows: (user_id, item_idx, invoice_no, timestamp)."""
    frame = pd.DataFrame(rows, columns=["user_id", "item_idx", "invoice_no", "ts"])
    frame["ts"] = pd.to_datetime(frame["ts"], format="ISO8601")
    frame["item_idx"] = frame["item_idx"].astype("int32")
    frame["product_id"] = "P" + frame["item_idx"].astype(str)
    frame["quantity"] = 1
    frame["price"] = 1.0
    frame["country"] = "UK"
    return frame


# Cut-off 2011-01-15, window [2011-01-15, 2011-01-29).
PURCHASES = [
    ("A", 0, "1", "2011-01-01 10:00"),
    ("A", 3, "1", "2011-01-01 10:00"),
    ("A", 0, "2", "2011-01-10 10:00"),
    ("A", 0, "10", "2011-01-20 10:00"),  # window: a repeat
    ("A", 1, "10", "2011-01-20 10:00"),  # window: new to A
    ("B", 4, "3", "2011-01-05 10:00"),
    ("B", 5, "3", "2011-01-05 10:00"),
    ("B", 5, "11", "2011-01-16 09:00"),  # window
    ("C", 2, "4", "2011-01-02 10:00"),  # C buys nothing in the window: not evaluated
    ("D", 2, "12", "2011-01-21 10:00"),  # D's first purchase is in the window: new customer, not evaluated
    ("A", 2, "13", "2011-01-29 00:00"),  # after the window: ignored
]
GUESTS = [
    (None, 3, "g1", "2011-01-12 10:00"),
    (None, 3, "g2", "2011-01-13 10:00"),
    (None, 4, "g3", "2011-01-20 10:00"),  # in the window: not visible to scorers
]


@pytest.fixture
def split():
    purchases = purchases_frame(PURCHASES)
    guests = purchases_frame(GUESTS)
    return make_split(purchases, guests, items_frame(), "2011-01-15", "2011-01-29", name="test")
