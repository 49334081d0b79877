"""Small synthetic purchase data for feature/model/export unit tests (no dataset, no processes)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from libs.features import FeatureStore
from libs.model_io import TEXT_DIM

N_ITEMS = 30
NOW = pd.Timestamp("2011-06-01")


def purchases(seed: int = 0, n_users: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    invoice = 0
    for u in range(n_users):
        for b in range(int(rng.integers(1, 6))):
            invoice += 1
            ts = NOW - pd.Timedelta(days=int(rng.integers(1, 120)), hours=int(rng.integers(0, 24)))
            for item in rng.choice(N_ITEMS, int(rng.integers(1, 5)), replace=False):
                rows.append(
                    {
                        "user_id": str(1000 + u),
                        "item_idx": int(item),
                        "product_id": f"P{item}",
                        "invoice_no": str(500000 + invoice),
                        "ts": ts,
                        "quantity": 1,
                    }
                )
    # A user with a known, hand-checked history: item 3 twice (2 and 10 days ago), item 4 once (40 days ago).
    for item, days, inv in ((3, 10, "9001"), (4, 40, "9000"), (3, 2, "9002"), (7, 2, "9002")):
        rows.append(
            {
                "user_id": "42",
                "item_idx": item,
                "product_id": f"P{item}",
                "invoice_no": inv,
                "ts": NOW - pd.Timedelta(days=days),
                "quantity": 1,
            }
        )
    return pd.DataFrame(rows)


def item_embeddings(seed: int = 1) -> np.ndarray:
    e = np.random.default_rng(seed).normal(size=(N_ITEMS, TEXT_DIM)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def store() -> FeatureStore:
    return FeatureStore.build(purchases(), item_embeddings(), NOW, product_ids=[f"P{i}" for i in range(N_ITEMS)])
