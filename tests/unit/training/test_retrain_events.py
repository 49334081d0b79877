"""Recorded purchases on the dataset's schema (training.retrain): ids mapped, order and spacing kept, after the data."""

import pandas as pd

from training.retrain import events_frame, extended_purchases

ITEMS = pd.DataFrame({"product_id": ["A", "B", "C"], "title": ["a", "b", "c"], "price": [1.0, 2.0, 3.0]})
END = pd.Timestamp("2011-11-24 19:59:00")
YEAR_2026 = 1_795_000_000.0  # wall-clock events, years after the data


def test_events_land_after_the_data_in_order_with_their_spacing_and_unknown_products_dropped():
    recorded = [
        ("17850", "B", YEAR_2026, 2, "fused"),
        ("12347", "ZZZ", YEAR_2026 + 5, 1, "fused"),
        ("12347", "C", YEAR_2026 + 60, 1, "gnn_only"),
        ("17850", "A", YEAR_2026 + 60, 3, "fused"),
    ]
    df = events_frame(ITEMS, recorded, END)
    assert df["product_id"].tolist() == ["B", "C", "A"]
    assert df["item_idx"].tolist() == [1, 2, 0]
    assert df["ts"].tolist() == [
        END + pd.Timedelta(seconds=1),
        END + pd.Timedelta(seconds=61),
        END + pd.Timedelta(seconds=61),
    ]
    assert df["quantity"].tolist() == [2, 1, 3]
    assert df["price"].tolist() == [2.0, 3.0, 1.0]
    # one basket per user and instant: the two users' purchases at the same second are two invoices
    assert df["invoice_no"].nunique() == 3


def test_extended_purchases_cuts_the_data_then_appends_the_events_sorted_by_customer_and_time():
    base = pd.DataFrame(
        {
            "user_id": ["1", "1", "2"],
            "product_id": ["A", "B", "C"],
            "item_idx": [0, 1, 2],
            "invoice_no": ["i1", "i2", "i3"],
            "ts": pd.to_datetime(["2011-10-01", "2011-11-01", "2011-10-15"]),
            "quantity": [1, 1, 1],
            "price": [1.0, 2.0, 3.0],
            "country": ["UK"] * 3,
        }
    )
    guests = base.iloc[:0].copy()
    recorded = [("1", "C", 1_000.0, 1, "fused"), ("2", "A", 1_010.0, 1, "fused")]
    merged, _, last = extended_purchases(base, guests, ITEMS, recorded, pd.Timestamp("2011-10-20"))
    assert last == pd.Timestamp("2011-10-15")
    assert merged["invoice_no"].tolist()[:1] == ["i1"]  # 2011-11-01 is after the cut: gone
    assert merged["product_id"].tolist() == ["A", "C", "C", "A"]
    assert merged["user_id"].tolist() == ["1", "1", "2", "2"]
    assert (merged["ts"].iloc[[1, 3]] > last).all()


def test_no_events_is_an_empty_frame_with_the_schema():
    df = events_frame(ITEMS, [], END)
    assert df.empty
    assert list(df.columns) == ["user_id", "product_id", "item_idx", "invoice_no", "ts", "quantity", "price", "country"]
