"""Cleaning rules, one test per rule, on hand-made lines."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from libs.catalog.clean import canonical_titles, clean, is_non_product, is_stock_note, normalise_code
from libs.catalog.raw import read_raw


def _clean(data_dir: Path):
    return clean(read_raw(data_dir / "online_retail" / "online_retail.csv.gz"))


def test_report_counts_each_rule(data_dir: Path) -> None:
    lines, report = _clean(data_dir)
    assert report.raw_rows == 14
    assert report.cancellations == 1
    assert report.non_positive_quantity_or_price == 1  # the "damaged" line (-5 at price 0)
    assert report.non_product_codes == 2  # POST, gift voucher
    assert report.stock_notes_or_empty_description == 2  # "check", empty
    assert report.kept_rows == len(lines) == 8
    assert report.kept_rows_with_customer == 6


def test_cancellations_and_their_negative_quantities_are_dropped(data_dir: Path) -> None:
    lines, _ = _clean(data_dir)
    assert not lines["invoice_no"].str.startswith("C").any()
    assert (lines["quantity"] > 0).all() and (lines["unit_price"] > 0).all()


def test_guests_are_kept_for_popularity_with_na_user(data_dir: Path) -> None:
    lines, _ = _clean(data_dir)
    guests = lines[lines["user_id"].isna()]
    assert sorted(guests["product_id"]) == ["22423", "71053"]


def test_customer_ids_lose_the_float_suffix(data_dir: Path) -> None:
    lines, _ = _clean(data_dir)
    assert set(lines["user_id"].dropna()) == {"17850", "13047"}


def test_stock_codes_are_upper_cased() -> None:
    assert normalise_code(pd.Series(["85123a", " 85123A ", "m"])).tolist() == ["85123A", "85123A", "M"]


def test_non_product_codes() -> None:
    codes = normalise_code(
        pd.Series(
            [
                "POST",
                "DOT",
                "M",
                "m",
                "BANK CHARGES",
                "AMAZONFEE",
                "D",
                "CRUK",
                "S",
                "PADS",
                "C2",
                "B",
                "gift_0001_20",
                "85123A",
                "DCGS0076",
                "21730",
            ]
        )
    )
    assert is_non_product(codes).tolist() == [True] * 13 + [False] * 3


def test_stock_notes_and_empty_descriptions() -> None:
    notes = [
        "damaged",
        "?",
        "??missing",
        "Thrown away.",
        "sold as set on dotcom",
        "check",
        "Found",
        "Manual",
        "Next Day Carriage",
        "20713",
        "",
        None,
        "wet/rusty",
        "Given away",
        "Show Samples",
    ]
    titles = [
        "WHITE HANGING HEART T-LIGHT HOLDER",
        "BAG 125g SWIRLY MARBLES",
        "Dr. Jam's Arouzer Stress Ball",
        "3 TRADITIONAl BISCUIT CUTTERS SET",
        "FLOWERS HANDBAG blue and orange",
        "DAMAGED LOVE SIGN",
    ]
    flags = is_stock_note(pd.Series(notes + titles, dtype=object))
    assert flags.tolist() == [True] * len(notes) + [False] * len(titles)


def test_canonical_title_is_the_most_frequent_description(data_dir: Path) -> None:
    lines, _ = _clean(data_dir)
    titles = canonical_titles(lines)
    # 85123A: "WHITE ..." twice ("85123a" folded in), "CREAM ..." once.
    assert titles["85123A"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert list(titles.index) == sorted(titles.index)


def test_canonical_title_ties_go_to_the_alphabetically_first() -> None:
    lines = pd.DataFrame({"product_id": ["1", "1", "2"], "description": ["ZEBRA MUG", "APPLE MUG", "PEAR"]})
    assert canonical_titles(lines).to_dict() == {"1": "APPLE MUG", "2": "PEAR"}


def test_descriptions_are_whitespace_normalised() -> None:
    raw = pd.DataFrame(
        {
            "InvoiceNo": ["1"],
            "StockCode": ["22"],
            "Description": ["  3 TRADITIONAl BISCUIT CUTTERS  SET "],
            "Quantity": [1],
            "UnitPrice": [1.0],
            "InvoiceDate": [pd.Timestamp("2011-01-01")],
            "CustomerID": ["5.0"],
            "Country": ["UK"],
        }
    )
    lines, _ = clean(raw)
    assert lines["description"].tolist() == ["3 TRADITIONAl BISCUIT CUTTERS SET"]
