"""Reading the raw CSV: typed columns, and a DataError naming file and line for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.catalog.errors import DataError
from libs.catalog.raw import read_raw
from tests.unit.catalog.conftest import HEADER, ROWS, write_csv


def test_reads_gzip_with_typed_columns(data_dir: Path) -> None:
    raw = read_raw(data_dir / "online_retail" / "online_retail.csv.gz")
    assert len(raw) == len(ROWS)
    assert str(raw["Quantity"].dtype) == "int64"
    assert str(raw["UnitPrice"].dtype) == "float64"
    assert raw["InvoiceDate"].dtype.kind == "M"
    assert raw["CustomerID"].iloc[0] == "17850.0"
    assert raw["CustomerID"].isna().sum() == 6


def test_missing_columns_names_file_and_header_line(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "bad.csv",
        ["536365,85123A,X,6,2010-12-01 08:26:00,2.55"],
        header="InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice",
    )
    with pytest.raises(DataError) as info:
        read_raw(path)
    assert info.value.path == path and info.value.line == 1
    assert "CustomerID" in str(info.value) and "Country" in str(info.value) and "bad.csv" in str(info.value)


def test_unparsable_date_names_the_line(tmp_path: Path) -> None:
    rows = [ROWS[0], ROWS[1], ROWS[0].replace("2010-12-01 08:26:00", "31/02/2011 8:26")]
    path = write_csv(tmp_path / "dates.csv", rows)
    with pytest.raises(DataError) as info:
        read_raw(path)
    assert info.value.line == 4  # header is line 1, the third data row is line 4
    assert info.value.column == "InvoiceDate"
    assert "31/02/2011 8:26" in str(info.value) and "dates.csv, line 4" in str(info.value)


def test_non_integer_quantity_names_the_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "qty.csv", [ROWS[0].replace(",6,", ",six,")])
    with pytest.raises(DataError, match=r"line 2: column 'Quantity'"):
        read_raw(path)


def test_non_numeric_price_names_the_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "price.csv", [ROWS[0], ROWS[1].replace("3.39", "£3")])
    with pytest.raises(DataError, match=r"line 3: column 'UnitPrice'"):
        read_raw(path)


def test_empty_required_value_names_the_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "code.csv", [ROWS[0].replace("85123A", "")])
    with pytest.raises(DataError, match=r"line 2: column 'StockCode'"):
        read_raw(path)


def test_ragged_row_is_a_data_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ragged.csv", [ROWS[0], ROWS[1] + ",extra,fields"])
    with pytest.raises(DataError, match="ragged.csv"):
        read_raw(path)


@pytest.mark.parametrize("content", ["", HEADER + "\n"])
def test_empty_file_or_header_only(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(DataError, match="empty.csv"):
        read_raw(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_raw(tmp_path / "nope.csv")
