"""Data preparation on the real UCI Online Retail file: manifest counts and a few known facts.

Skipped (with the reason) only when the real data directory is absent. Writes to a temporary folder, never to the
project's artifacts/.
"""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from libs.catalog import default_data_dir, load_dataset
from libs.catalog.clean import NON_PRODUCT_CODES
from libs.catalog.prepare import prepare
from libs.catalog.raw import RAW_FILE
from training.evaluate.split import standard_splits

pytestmark = pytest.mark.integration

DATA_DIR = default_data_dir()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory):
    if not (DATA_DIR / RAW_FILE).is_file():
        pytest.skip(f"real data not found at {DATA_DIR / RAW_FILE} (set SHOP_DATA_DIR)")
    out = tmp_path_factory.mktemp("artifacts")
    folder = prepare(DATA_DIR, out)
    return out, folder


def test_manifest_counts(prepared) -> None:
    _, folder = prepared
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["cleaning"]["raw_rows"] == 499_619  # the README's row count
    assert manifest["cleaning"]["cancellations"] == 8_773
    assert manifest["time_span"] == {"first": "2010-12-01 08:26:00", "last": "2011-11-24 19:59:00"}
    rows = manifest["rows"]
    assert rows["items"] == 3_780
    assert rows["customers"] == 4_248
    assert rows["purchases"] == 358_494
    assert rows["guest_sales"] == 118_418


def test_known_facts_and_fast_reload(prepared) -> None:
    out, _ = prepared
    started = time.perf_counter()
    ds = load_dataset(out)
    assert time.perf_counter() - started < 2.0
    assert ds.title(ds.item_idx("85123A")) == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert ds.title(ds.item_idx("71053")) == "WHITE METAL LANTERN"
    assert not set(ds.items["product_id"]) & NON_PRODUCT_CODES
    assert not ds.items["product_id"].str.startswith("GIFT_").any()
    assert (ds.items["product_id"] == ds.items["product_id"].str.upper()).all()
    first = ds.history("17850").iloc[0]
    assert first["ts"] == pd.Timestamp("2010-12-01 08:26:00") and first["invoice_no"] == "536365"
    assert (ds.purchases["quantity"] > 0).all() and (ds.purchases["price"] > 0).all()
    assert not ds.purchases["invoice_no"].str.startswith("C").any()


def test_standard_splits(prepared) -> None:
    out, _ = prepared
    validation, test = standard_splits(load_dataset(out))
    assert (str(validation.cutoff.date()), str(test.cutoff.date()), str(test.window_end.date())) == (
        "2011-10-28",
        "2011-11-11",
        "2011-11-25",
    )
    assert len(test.users) == 847 and len(validation.users) == 721
    # About half of what returning customers buy in two weeks they had bought before.
    assert 0.35 < test.describe()["truth_repeat_share"] < 0.55
