"""Read the raw UCI Online Retail CSV into typed columns, or fail with a DataError naming file and line.

Everything is read as text first and converted here, column by column, so that a bad value is reported as
"<file>, line N: column 'InvoiceDate': cannot parse '31/02/2011'" rather than as a pandas traceback.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from libs.catalog.errors import DataError

RAW_FILE = Path("online_retail") / "online_retail.csv.gz"
REQUIRED_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
# Columns that must be present on every row (Description and CustomerID may be empty: cleaning handles them).
NON_EMPTY = ("InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice")


def _line_of(position: int) -> int:
    """File line of the data row at 0-based `position` (line 1 is the header)."""
    return position + 2


def _first_bad(path: Path, column: str, values: pd.Series, bad: pd.Series, what: str) -> DataError:
    position = int(bad.to_numpy().nonzero()[0][0])
    value = values.iloc[position]
    return DataError(path, f"{what} {value!r} ({int(bad.sum())} bad rows in all)", _line_of(position), column)


def read_raw(path: Path) -> pd.DataFrame:
    """Read the raw CSV (plain or gzip) and return it with typed columns.

    Types: InvoiceNo/StockCode/Description/CustomerID/Country str (empty -> NA), Quantity int64, UnitPrice float64,
    InvoiceDate datetime64. The row order of the file is kept (the index is the 0-based data row).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        # Text only: conversion happens below, where a failure can name its line.
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as exc:
        # ParserError messages carry the line ("Expected 8 fields in line 3, saw 9").
        raise DataError(path, f"unreadable CSV: {exc}") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(path, "file is empty (no header)") from exc

    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(path, f"missing columns {missing}; found {list(raw.columns)}", line=1)
    raw = raw.loc[:, list(REQUIRED_COLUMNS)].reset_index(drop=True)
    if raw.empty:
        raise DataError(path, "no data rows after the header")

    for column in NON_EMPTY:
        empty = raw[column].isna() | (raw[column].str.strip() == "")
        if empty.any():
            raise _first_bad(path, column, raw[column], empty, "empty value")

    out = pd.DataFrame(index=raw.index)
    for column in ("InvoiceNo", "StockCode", "Description", "CustomerID", "Country"):
        out[column] = raw[column].str.strip()

    quantity = pd.to_numeric(raw["Quantity"].str.strip(), errors="coerce")
    bad = quantity.isna() | (quantity != quantity.round())
    if bad.any():
        raise _first_bad(path, "Quantity", raw["Quantity"], bad, "not an integer:")
    out["Quantity"] = quantity.astype("int64")

    price = pd.to_numeric(raw["UnitPrice"].str.strip(), errors="coerce")
    if price.isna().any():
        raise _first_bad(path, "UnitPrice", raw["UnitPrice"], price.isna(), "not a number:")
    out["UnitPrice"] = price.astype("float64")

    # ISO 8601 ("2010-12-01 08:26:00") is what this copy uses; anything else is reported, not guessed at
    # (the original UCI file's "12/1/2010 8:26" is ambiguous between day-first and month-first).
    ts = pd.to_datetime(raw["InvoiceDate"].str.strip(), format="ISO8601", errors="coerce")
    if ts.isna().any():
        raise _first_bad(path, "InvoiceDate", raw["InvoiceDate"], ts.isna(), "cannot parse date")
    out["InvoiceDate"] = ts.astype("datetime64[ns]")
    return out
