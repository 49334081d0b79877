"""What the inner services load at start-up, in one place: dataset, title embeddings, feature store, fusion."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from libs.catalog.store import Dataset, load_dataset
from libs.features import FeatureStore
from libs.fusion import Fusion
from libs.model_io import FUSION_FILE, ITEM_EMBEDDINGS_FILE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingState:
    dataset: Dataset
    item_emb: np.ndarray
    store: FeatureStore
    fusion: Fusion


def load_serving_state(artifacts_dir: Path) -> ServingState:
    """The store's clock is the end of the data: every stored purchase is history, fresh events come after."""
    start = time.perf_counter()
    dataset = load_dataset(artifacts_dir)
    models = artifacts_dir / "models"
    item_emb = np.load(models / ITEM_EMBEDDINGS_FILE)
    now = dataset.purchases["ts"].max() + pd.Timedelta(seconds=1)
    store = FeatureStore.build(dataset.purchases, item_emb, now, dataset.guest_sales, dataset.items["product_id"])
    fusion = Fusion.load(models / FUSION_FILE)
    log.info("serving state loaded in %.1fs (%d items, %d users)", time.perf_counter() - start,
             dataset.n_items, len(store.users))
    return ServingState(dataset, item_emb, store, fusion)
