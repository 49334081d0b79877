"""Fast reload of the prepared dataset (parquet + npz, no CSV parsing): what services call at start-up.

ds = load_dataset()                 # $SHOP_ARTIFACTS_DIR or <repo>/artifacts, the latest prepared version
ds.items.loc[ds.item_idx("85123A"), "title"]
ds.history("17850")                 # that customer's purchases, oldest first
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from libs.catalog.errors import DatasetNotFoundError
from libs.config import REPO_ROOT, artifacts_dir

MANIFEST_FILE = "manifest.json"
LATEST_FILE = "LATEST"


def default_data_dir() -> Path:
    """Raw data root: $SHOP_DATA_DIR, else ../shared/data next to the repository."""
    env = os.environ.get("SHOP_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def default_artifacts_root() -> Path:
    """Artifacts root: $SHOP_ARTIFACTS_DIR, else <repo>/artifacts."""
    return artifacts_dir()


@dataclass(frozen=True, eq=False)
class Dataset:
    """The prepared data. Row i of `items` is dense item index i; row u of `customers` is dense user index u.

    purchases: user_id, product_id, item_idx, invoice_no, ts, quantity, price, country (one row per invoice and
    product, known customers only, sorted by user_id then time). guest_sales: same columns, no user (popularity
    only). user_item / copurchase: see `libs.catalog.prepare`; both cover the whole period.
    """

    version: str
    folder: Path
    manifest: dict
    items: pd.DataFrame
    customers: pd.DataFrame
    purchases: pd.DataFrame
    guest_sales: pd.DataFrame
    user_item: sp.csr_matrix
    copurchase: sp.csr_matrix
    item_index: pd.Index  # product_id -> item_idx
    user_index: pd.Index  # user_id -> user_idx
    user_offsets: np.ndarray  # purchases rows of user u are user_offsets[u]:user_offsets[u + 1]

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_users(self) -> int:
        return len(self.customers)

    def item_idx(self, product_id: str) -> int:
        """Dense index of a product; KeyError for an unknown product."""
        return int(self.item_index.get_loc(product_id))

    def title(self, item_idx: int) -> str:
        return str(self.items["title"].iat[item_idx])

    def history(self, user_id: str) -> pd.DataFrame:
        """The customer's purchases, oldest first; empty (same columns) for an unknown customer."""
        position = self.user_index.get_indexer([user_id])[0]
        if position < 0:
            return self.purchases.iloc[0:0]
        return self.purchases.iloc[self.user_offsets[position] : self.user_offsets[position + 1]]


def resolve_version(artifacts_root: Path, version: str | None = None) -> Path:
    """The version folder to load: `version`, else the one named in data/LATEST."""
    data_root = Path(artifacts_root) / "data"
    if version is None:
        latest = data_root / LATEST_FILE
        if not latest.is_file():
            raise DatasetNotFoundError(f"no prepared dataset under {data_root} (run `python -m libs.catalog.prepare`)")
        version = latest.read_text().strip()
    folder = data_root / version
    if not (folder / MANIFEST_FILE).is_file():
        raise DatasetNotFoundError(f"{folder} is not a complete prepared dataset (no {MANIFEST_FILE})")
    return folder


def load_dataset(artifacts_root: Path | None = None, version: str | None = None) -> Dataset:
    """Load a prepared dataset (latest by default). Raises DatasetNotFoundError when there is none."""
    folder = resolve_version(artifacts_root or default_artifacts_root(), version)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    items = pd.read_parquet(folder / "items.parquet")
    customers = pd.read_parquet(folder / "customers.parquet")
    purchases = pd.read_parquet(folder / "purchases.parquet")
    guest_sales = pd.read_parquet(folder / "guest_sales.parquet")
    offsets = np.zeros(len(customers) + 1, dtype=np.int64)
    np.cumsum(customers["n_lines"].to_numpy(), out=offsets[1:])
    if offsets[-1] != len(purchases):
        raise DatasetNotFoundError(f"{folder}: customers and purchases disagree ({offsets[-1]} != {len(purchases)})")
    return Dataset(
        version=folder.name,
        folder=folder,
        manifest=manifest,
        items=items,
        customers=customers,
        purchases=purchases,
        guest_sales=guest_sales,
        user_item=sp.load_npz(folder / "user_item.npz").tocsr(),
        copurchase=sp.load_npz(folder / "copurchase.npz").tocsr(),
        item_index=pd.Index(items["product_id"]),
        user_index=pd.Index(customers["user_id"]),
        user_offsets=offsets,
    )
