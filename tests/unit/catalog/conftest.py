"""Tiny hand-made raw CSVs for the catalogue tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"

# Two customers, one guest order, and one line for each cleaning rule.
ROWS = [
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
    "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom",
    "536365,71053,WHITE METAL LANTERN,2,2010-12-01 08:26:00,3.39,17850.0,United Kingdom",  # same line typed twice
    "536366,85123a,WHITE HANGING HEART T-LIGHT HOLDER,2,2010-12-02 09:00:00,2.95,17850.0,United Kingdom",
    "536367,71053,WHITE METAL LANTERN,1,2010-12-03 10:00:00,3.75,,United Kingdom",  # guest
    "536367,22423,REGENCY CAKESTAND 3 TIER,1,2010-12-03 10:00:00,12.75,,United Kingdom",  # guest
    "536368,22423,REGENCY CAKESTAND 3 TIER,1,2010-12-04 11:00:00,12.75,13047.0,France",
    "536368,85123A,CREAM HANGING HEART T-LIGHT HOLDER,1,2010-12-04 11:00:00,2.55,13047.0,France",
    "C536369,22423,REGENCY CAKESTAND 3 TIER,-1,2010-12-05 12:00:00,12.75,13047.0,France",  # cancellation
    "536370,POST,POSTAGE,1,2010-12-05 12:00:00,18.00,13047.0,France",  # non-product
    "536371,22423,damaged,-5,2010-12-05 12:00:00,0,,United Kingdom",  # stock note, negative quantity
    "536372,22424,check,3,2010-12-05 12:00:00,1.00,,United Kingdom",  # stock note on a positive line
    "536373,gift_0001_20,Dotcomgiftshop Gift Voucher £20.00,1,2010-12-05 12:00:00,17.02,,United Kingdom",
    "536374,22425,,1,2010-12-05 12:00:00,1.00,,United Kingdom",  # empty description
]


def write_csv(path: Path, rows: list[str], header: str = HEADER, gz: bool = False) -> Path:
    text = "\n".join([header, *rows]) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data dir laid out like ../shared/data with the tiny CSV gzipped."""
    root = tmp_path / "data"
    write_csv(root / "online_retail" / "online_retail.csv.gz", ROWS, gz=True)
    return root
