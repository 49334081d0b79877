"""Build the dataset artifacts once from the raw CSV; services and training reload them with `store.load_dataset`.

    python -m libs.catalog.prepare [--data-dir DIR] [--out DIR]

writes `<out>/data/<version>/` (version = first 12 hex of the input's sha256 + "-p" + PREP_VERSION) with:

- items.parquet      one row per product, row i = dense item index i: product_id, title, price, first_seen, and
                     whole-period counts (n_orders, n_customers, units). Those counts see the whole period: the
                     offline evaluation never uses them (it recomputes everything from its train split).
- purchases.parquet  invoice lines of known customers, one row per (invoice, product): user_id, product_id,
                     item_idx, invoice_no, ts, quantity, price, country; sorted by user_id, ts, invoice_no, item_idx.
- guest_sales.parquet the same for guest checkouts (no customer): popularity only, never the behaviour graph.
- customers.parquet  one row per customer, row u = dense user index u: user_id, country, first_seen, last_seen,
                     n_invoices, n_lines.
- user_item.npz      scipy CSR [n_users, n_items]: number of invoices in which the user bought the item.
- copurchase.npz     scipy CSR [n_items, n_items]: number of invoices (guests included) holding both items; zero
                     diagonal.
- manifest.json      row counts, time span, input sha256, cleaning report, created, code version.

The folder is written under a temporary name and renamed when complete, so a reader never sees half a version;
if the version already exists, `prepare` returns it without work.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm import tqdm

from libs.catalog.clean import CleanReport, canonical_titles, clean
from libs.catalog.errors import DataError
from libs.catalog.raw import RAW_FILE, read_raw
from libs.catalog.store import (
    LATEST_FILE,
    MANIFEST_FILE,
    default_artifacts_root,
    default_data_dir,
)

# Bump when a rule or an output format changes: it is part of the version folder name.
PREP_VERSION = "1"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def version_name(input_sha256: str) -> str:
    return f"{input_sha256[:12]}-p{PREP_VERSION}"


def aggregate_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per (invoice, product): the same product typed twice on an invoice is one purchase.

    quantity is summed; price is the quantity-weighted mean unit price; ts, user_id and country are the invoice's.
    """
    work = lines.assign(amount=lines["quantity"] * lines["unit_price"])
    grouped = work.groupby(["invoice_no", "product_id"], sort=False)
    out = grouped.agg(
        ts=("ts", "min"),
        user_id=("user_id", "first"),
        country=("country", "first"),
        quantity=("quantity", "sum"),
        amount=("amount", "sum"),
    ).reset_index()
    out["price"] = (out["amount"] / out["quantity"]).round(4)
    return out.drop(columns="amount")


def build_items(lines: pd.DataFrame, sales: pd.DataFrame) -> pd.DataFrame:
    """The catalogue: every product sold at least once (guests included), sorted by product_id."""
    titles = canonical_titles(lines)
    by_product = sales.groupby("product_id", sort=True)
    items = pd.DataFrame(
        {
            "title": titles,
            "price": lines.groupby("product_id")["unit_price"].median().round(2),
            "first_seen": by_product["ts"].min(),
            "n_orders": by_product["invoice_no"].nunique(),
            "n_customers": by_product["user_id"].nunique(),
            "units": by_product["quantity"].sum(),
        }
    )
    items.index.name = "product_id"
    items = items.sort_index().reset_index()
    return items.astype({"n_orders": "int64", "n_customers": "int64", "units": "int64"})


def build_customers(purchases: pd.DataFrame) -> pd.DataFrame:
    """One row per customer (sorted by user_id); country is the customer's most frequent invoice country."""
    invoices = purchases.drop_duplicates("invoice_no")
    country = (
        invoices.groupby(["user_id", "country"])
        .size()
        .rename("n")
        .reset_index()
        .sort_values(["user_id", "n", "country"], ascending=[True, False, True], kind="stable")
        .drop_duplicates("user_id")
        .set_index("user_id")["country"]
    )
    by_user = purchases.groupby("user_id", sort=True)
    customers = pd.DataFrame(
        {
            "country": country,
            "first_seen": by_user["ts"].min(),
            "last_seen": by_user["ts"].max(),
            "n_invoices": by_user["invoice_no"].nunique(),
            "n_lines": by_user.size(),
        }
    )
    customers.index.name = "user_id"
    return customers.sort_index().reset_index()


def user_item_matrix(purchases: pd.DataFrame, user_index: pd.Index, n_items: int) -> sp.csr_matrix:
    """CSR [n_users, n_items] of invoice counts (purchases has one row per invoice and product)."""
    rows = user_index.get_indexer(purchases["user_id"])
    data = np.ones(len(purchases), dtype=np.int32)
    matrix = sp.csr_matrix((data, (rows, purchases["item_idx"].to_numpy())), shape=(len(user_index), n_items))
    matrix.sum_duplicates()
    return matrix


def copurchase_matrix(sales: pd.DataFrame, n_items: int) -> sp.csr_matrix:
    """CSR [n_items, n_items] int32: in how many invoices (baskets) each pair of items was bought together. The one
    definition of co-purchase: the prepared artifact, the feature store's neighbours and retrieval all use it."""
    if sales.empty:
        return sp.csr_matrix((n_items, n_items), dtype=np.int32)
    invoice_codes, _ = pd.factorize(sales["invoice_no"])
    baskets = sp.csr_matrix(
        (np.ones(len(sales), dtype=np.float32), (invoice_codes, sales["item_idx"].to_numpy())),
        shape=(int(invoice_codes.max()) + 1, n_items),
    )
    baskets.sum_duplicates()
    baskets.data[:] = 1.0  # an item counts once per basket
    counts = (baskets.T @ baskets).tocsr()
    counts.setdiag(0)
    counts.eliminate_zeros()
    return counts.astype(np.int32)


def build(lines: pd.DataFrame) -> dict[str, object]:
    """From cleaned lines to the artifact tables (pure: no I/O)."""
    sales = aggregate_lines(lines)
    items = build_items(lines, sales)
    item_index = pd.Index(items["product_id"])
    sales["item_idx"] = item_index.get_indexer(sales["product_id"]).astype(np.int32)
    columns = ["user_id", "product_id", "item_idx", "invoice_no", "ts", "quantity", "price", "country"]
    known = sales["user_id"].notna()
    purchases = (
        sales.loc[known, columns]
        .sort_values(["user_id", "ts", "invoice_no", "item_idx"], kind="stable")
        .reset_index(drop=True)
    )
    guest_sales = sales.loc[~known, columns].sort_values(["ts", "invoice_no", "item_idx"], kind="stable")
    customers = build_customers(purchases)
    return {
        "items": items,
        "purchases": purchases,
        "guest_sales": guest_sales.reset_index(drop=True),
        "customers": customers,
        "user_item": user_item_matrix(purchases, pd.Index(customers["user_id"]), len(items)),
        "copurchase": copurchase_matrix(sales, len(items)),
    }


def _manifest(
    tables: dict[str, object], report: CleanReport, input_path: Path, input_sha: str, version: str
) -> dict[str, object]:
    purchases: pd.DataFrame = tables["purchases"]  # type: ignore[assignment]
    guests: pd.DataFrame = tables["guest_sales"]  # type: ignore[assignment]
    all_ts = pd.concat([purchases["ts"], guests["ts"]])
    return {
        "version": version,
        "prep_version": PREP_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": {"file": str(input_path), "sha256": input_sha},
        "time_span": {"first": str(all_ts.min()), "last": str(all_ts.max())},
        "rows": {
            "items": len(tables["items"]),  # type: ignore[arg-type]
            "customers": len(tables["customers"]),  # type: ignore[arg-type]
            "purchases": len(purchases),
            "purchase_invoices": int(purchases["invoice_no"].nunique()),
            "guest_sales": len(guests),
            "guest_invoices": int(guests["invoice_no"].nunique()),
            "user_item_nnz": int(tables["user_item"].nnz),  # type: ignore[attr-defined]
            "copurchase_nnz": int(tables["copurchase"].nnz),  # type: ignore[attr-defined]
        },
        "cleaning": report.as_dict(),
    }


def _write(tables: dict[str, object], manifest: dict[str, object], folder: Path) -> None:
    for name in ("items", "purchases", "guest_sales", "customers"):
        tables[name].to_parquet(folder / f"{name}.parquet", index=False)  # type: ignore[attr-defined]
    for name in ("user_item", "copurchase"):
        sp.save_npz(folder / f"{name}.npz", tables[name], compressed=True)  # type: ignore[arg-type]
    # The manifest goes last: its presence marks a complete folder.
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")


def _point_latest(out_root: Path, version: str) -> None:
    latest = out_root / "data" / LATEST_FILE
    tmp = latest.with_name(f".{LATEST_FILE}.{os.getpid()}")
    tmp.write_text(version + "\n")
    os.replace(tmp, latest)


def prepare(data_dir: Path, out_root: Path, progress: bool = False) -> Path:
    """Clean and build the artifacts for `data_dir/online_retail/online_retail.csv.gz` into `out_root/data/<version>`.

    Returns the version folder. Idempotent: an existing folder with a manifest is returned as it is (and marked
    latest). Raises DataError for bad input.
    """
    input_path = Path(data_dir) / RAW_FILE
    if not input_path.is_file():
        raise DataError(input_path, f"input not found (looked in data dir {data_dir}; set SHOP_DATA_DIR)")
    steps = tqdm(total=5, desc="prepare", unit="step", disable=not progress, file=sys.stderr)
    steps.set_postfix_str("hash input")
    input_sha = sha256_of(input_path)
    version = version_name(input_sha)
    folder = Path(out_root) / "data" / version
    if (folder / MANIFEST_FILE).is_file():
        steps.close()
        _point_latest(Path(out_root), version)
        return folder
    steps.update()

    steps.set_postfix_str("read csv")
    raw = read_raw(input_path)
    steps.update()
    steps.set_postfix_str("clean")
    lines, report = clean(raw)
    if lines.empty:
        raise DataError(input_path, "no product sales left after cleaning")
    steps.update()
    steps.set_postfix_str("build")
    tables = build(lines)
    manifest = _manifest(tables, report, input_path, input_sha, version)
    steps.update()

    steps.set_postfix_str("write")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        _write(tables, manifest, tmp)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / MANIFEST_FILE).is_file():  # not a concurrent writer that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _point_latest(Path(out_root), version)
    steps.update()
    steps.close()
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m libs.catalog.prepare", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="raw data root (SHOP_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=None, help="artifacts root (SHOP_ARTIFACTS_DIR)")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or default_data_dir()
    out_root = args.out or default_artifacts_root()
    started = time.perf_counter()
    try:
        folder = prepare(data_dir, out_root, progress=True)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    rows = ", ".join(f"{k}={v}" for k, v in manifest["rows"].items())
    span = manifest["time_span"]
    print(f"{folder} ({time.perf_counter() - started:.1f}s)\n  {span['first']} .. {span['last']}\n  {rows}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
