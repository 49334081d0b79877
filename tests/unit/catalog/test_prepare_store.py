"""Building the artifacts once and reloading them: contents, manifest, idempotence, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from libs.catalog import DataError, DatasetNotFoundError, load_dataset
from libs.catalog.prepare import PREP_VERSION, main, prepare
from tests.unit.catalog.conftest import ROWS, write_csv


@pytest.fixture
def prepared(data_dir: Path, tmp_path: Path):
    out = tmp_path / "artifacts"
    folder = prepare(data_dir, out)
    return folder, load_dataset(out)


def test_manifest_counts_and_span(prepared) -> None:
    folder, ds = prepared
    manifest = json.loads((folder / "manifest.json").read_text())
    assert folder.name.endswith(f"-p{PREP_VERSION}") and ds.version == folder.name
    assert manifest["rows"]["items"] == 3
    assert manifest["rows"]["customers"] == 2
    # 17850: 536365 (85123A, 71053 twice -> one row), 536366 (85123A); 13047: 536368 (22423, 85123A)
    assert manifest["rows"]["purchases"] == 5
    assert manifest["rows"]["guest_sales"] == 2
    assert manifest["time_span"] == {"first": "2010-12-01 08:26:00", "last": "2010-12-04 11:00:00"}
    assert len(manifest["input"]["sha256"]) == 64
    assert manifest["cleaning"]["raw_rows"] == 14


def test_catalogue_in_product_order_with_canonical_titles(prepared) -> None:
    _, ds = prepared
    assert ds.items["product_id"].tolist() == ["22423", "71053", "85123A"]
    assert ds.title(ds.item_idx("85123A")) == "WHITE HANGING HEART T-LIGHT HOLDER"
    lantern = ds.items.iloc[ds.item_idx("71053")]
    assert lantern["n_orders"] == 2 and lantern["n_customers"] == 1  # a guest order counts for popularity
    assert str(lantern["first_seen"]) == "2010-12-01 08:26:00"


def test_duplicate_lines_are_one_purchase_with_summed_quantity(prepared) -> None:
    _, ds = prepared
    row = ds.purchases[(ds.purchases["invoice_no"] == "536365") & (ds.purchases["product_id"] == "71053")]
    assert len(row) == 1 and int(row["quantity"].iloc[0]) == 8


def test_history_is_time_ordered_and_empty_for_unknown(prepared) -> None:
    _, ds = prepared
    history = ds.history("17850")
    assert history["ts"].is_monotonic_increasing and len(history) == 3
    assert (history["user_id"] == "17850").all()
    assert ds.history("99999").empty and list(ds.history("99999").columns) == list(ds.purchases.columns)
    assert ds.purchases["user_id"].notna().all()


def test_graph_and_copurchase_matrices(prepared) -> None:
    _, ds = prepared
    assert ds.user_item.shape == (2, 3)
    u = ds.user_index.get_loc("17850")
    assert ds.user_item[u, ds.item_idx("85123A")] == 2  # two invoices
    cake, lantern, heart = (ds.item_idx(p) for p in ("22423", "71053", "85123A"))
    assert ds.copurchase[heart, lantern] == 1  # 536365
    assert ds.copurchase[cake, lantern] == 1  # guest invoice 536367 counts too
    assert ds.copurchase[cake, heart] == 1  # 536368
    assert np.all(ds.copurchase.diagonal() == 0)
    assert (ds.copurchase != ds.copurchase.T).nnz == 0


def test_prepare_is_idempotent(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    first = prepare(data_dir, out)
    stamp = (first / "manifest.json").stat().st_mtime_ns
    second = prepare(data_dir, out)
    assert second == first and (first / "manifest.json").stat().st_mtime_ns == stamp
    assert (out / "data" / "LATEST").read_text().strip() == first.name
    assert [p.name for p in (out / "data").iterdir() if p.name.startswith(".")] == []


def test_bad_input_raises_and_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_csv(data / "online_retail" / "online_retail.csv.gz", [ROWS[0].replace("2010-12-01", "yesterday")], gz=True)
    with pytest.raises(DataError, match="line 2"):
        prepare(data, tmp_path / "artifacts")
    assert not (tmp_path / "artifacts" / "data").exists() or not any((tmp_path / "artifacts" / "data").iterdir())


def test_cli_reports_bad_input_without_traceback(tmp_path: Path, capsys) -> None:
    code = main(["--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "a")])
    assert code == 2
    assert "error:" in capsys.readouterr().err


def test_load_without_prepared_data(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="prepare"):
        load_dataset(tmp_path)
