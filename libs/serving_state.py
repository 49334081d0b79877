"""What the inner services load from one bundle, in one place: dataset, title embeddings, feature store, fusion."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from libs.bundles import Bundle
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
    bundle: Bundle


def load_serving_state(artifacts_dir: Path, bundle: Bundle, previous: ServingState | None = None) -> ServingState:
    """The store's clock is the end of the data: every stored purchase is history, fresh events come after.

    With `previous` from a bundle with the same title embeddings (the manifests' hashes), its dataset and feature
    store are reused: a bundle switch then only swaps the small files, in milliseconds.
    """
    start = time.perf_counter()
    fusion = Fusion.load(bundle.path / FUSION_FILE)
    files = bundle.manifest["files"]
    if previous is not None and previous.bundle.manifest["files"][ITEM_EMBEDDINGS_FILE] == files[ITEM_EMBEDDINGS_FILE]:
        return ServingState(previous.dataset, previous.item_emb, previous.store, fusion, bundle)
    dataset = load_dataset(artifacts_dir)
    item_emb = np.load(bundle.path / ITEM_EMBEDDINGS_FILE)
    now = dataset.purchases["ts"].max() + pd.Timedelta(seconds=1)
    store = FeatureStore.build(dataset.purchases, item_emb, now, dataset.guest_sales, dataset.items["product_id"])
    log.info(
        "serving state of bundle %s loaded in %.1fs (%d items, %d users)",
        bundle.id,
        time.perf_counter() - start,
        dataset.n_items,
        len(store.users),
    )
    return ServingState(dataset, item_emb, store, fusion, bundle)
