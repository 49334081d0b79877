"""Scorer factories for `python -m training.evaluate` (registered on import; see training/evaluate/registry.py).

- every registered ranker (libs.rankers): the trained model on each user's candidate pool (libs.features.candidate_pool:
  own past items, co-purchase neighbours of recent items, 100 most popular); items outside the pool rank below,
  by popularity. `fit(train)` loads the newest checkpoint that `python -m training.train` trained with a cut-off at
  or before `train.cutoff` (the pipeline trains once, before the validation window, so neither the validation nor
  the test row was trained on its own window); features (history, popularity, neighbours) are rebuilt from
  `train` at its cut-off. Without a checkpoint it trains the same way in-process.
- fused_rankers: libs.fusion.Fusion as fitted on the validation split (artifacts/models/fusion.json), the
  purchase-frequency prior included - the very score ranking serves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from libs.config import models_dir as default_models_dir
from libs.features import FeatureStore
from libs.fusion import PRIOR, Fusion
from libs.model_io import FUSION_FILE, ITEM_EMBEDDINGS_FILE
from libs.rankers import rankers
from training.evaluate.registry import register
from training.evaluate.split import TrainData

DEFAULT_WINDOWS = 10
DEFAULT_EPOCHS = 4


def _item_embeddings(train: TrainData, models_dir: Path) -> np.ndarray:
    from training.train.titles import encode_titles

    return encode_titles(train.items["title"].tolist(), models_dir, key=_key(models_dir, train), progress=False)


def _key(models_dir: Path, train: TrainData) -> str:
    meta = models_dir / "item_embeddings.json"
    if meta.is_file() and (models_dir / ITEM_EMBEDDINGS_FILE).is_file():
        info = json.loads(meta.read_text())
        if info.get("n_items") == train.n_items:
            return info["key"]  # the catalogue the pipeline encoded
    return f"catalogue-{train.n_items}"


class RankerScorer:
    def __init__(self, name: str, models_dir: Path | None = None, threads: int = 2) -> None:
        self.name = name
        self.models_dir = Path(models_dir or default_models_dir())
        self.threads = threads

    def fit(self, train: TrainData) -> None:
        from training.train.checkpoints import latest_checkpoint, load_checkpoint
        from training.train.trainer import TrainConfig, train_ranker

        torch.set_num_threads(self.threads)
        self.item_emb = _item_embeddings(train, self.models_dir)
        self.store = FeatureStore.build(train.purchases, self.item_emb, train.cutoff, train.guest_sales)
        path = latest_checkpoint(self.models_dir, self.name, train.cutoff)
        if path is not None:
            self.model, self.meta = load_checkpoint(path, self.item_emb)
        else:  # same recipe as `python -m training.train`, in-process
            from training.train.data import build_examples

            examples = build_examples(train.purchases, train.guest_sales, self.item_emb, train.cutoff, DEFAULT_WINDOWS)
            self.model, info = train_ranker(
                self.name, examples, train.n_items, self.item_emb, TrainConfig(epochs=DEFAULT_EPOCHS), progress=False
            )
            self.meta = {"info": info, "trained_in_fit": True}

    def score(self, user_ids: Sequence[str]) -> np.ndarray:
        from training.train.trainer import score_catalogue

        return score_catalogue(self.name, self.model, self.store, list(user_ids))


class FusedScorer:
    """libs.fusion.Fusion over every registered ranker on the candidate pool, as fitted by training; `explore`: the
    repeat-vs-explore setting of a variant (libs.scoring.Arm), its discovery term added as ranking adds it."""

    def __init__(self, models_dir: Path | None = None, explore: float = 0.0) -> None:
        self.models_dir = Path(models_dir or default_models_dir())
        self.parts = {r.name: RankerScorer(r.name, self.models_dir) for r in rankers()}
        self.explore = explore

    def fit(self, train: TrainData) -> None:
        for part in self.parts.values():
            part.fit(train)
        self.fusion = Fusion.load(self.models_dir / FUSION_FILE)

    def score(self, user_ids: Sequence[str]) -> np.ndarray:
        return self.scores_at(user_ids, [self.explore])[self.explore]

    def scores_at(self, user_ids: Sequence[str], levels: Sequence[float]) -> dict[float, np.ndarray]:
        """The scores at each explore setting, the rankers run once."""
        return self._fused(user_ids, levels, self.fusion, self._components(user_ids))

    def shelf_scores(self, user_ids: Sequence[str], shelves: Sequence[str]) -> dict[str, np.ndarray]:
        """The scores with each shelf's fusion weights (libs.fusion.Fusion.for_shelf; a libs.domain.Shelf value
        each), at this scorer's explore setting, the rankers run once."""
        components = self._components(user_ids)
        return {
            shelf: self._fused(user_ids, [self.explore], self.fusion.for_shelf(shelf), components)[self.explore]
            for shelf in shelves
        }

    def _components(self, user_ids: Sequence[str]) -> dict[str, np.ndarray]:
        from training.train.trainer import score_prior

        store = next(iter(self.parts.values())).store
        return {n: p.score(user_ids) for n, p in self.parts.items()} | {PRIOR: score_prior(store, user_ids)}

    def _fused(
        self, user_ids: Sequence[str], levels: Sequence[float], fusion: Fusion, components: dict[str, np.ndarray]
    ) -> dict[float, np.ndarray]:
        first = components[next(iter(self.parts))]
        pool = first > -1.0e5  # every ranker scores the same pool; outside it, the shared popularity floor
        store = next(iter(self.parts.values())).store
        fused = np.where(pool, fusion.combine(components), first)
        new = pool.copy()
        for row, user in enumerate(user_ids):
            ctx = store.users.get(str(user))
            if ctx is not None:
                new[row, ctx.items] = False
        return {x: (fused + np.where(pool, fusion.discovery(x, new), 0.0)).astype(np.float32) for x in levels}


for _r in rankers():
    register(_r.name, lambda name=_r.name: RankerScorer(name), description=_r.description)
register(
    "fused_rankers", FusedScorer, description="libs.fusion over every ranker, weights fitted on validation NDCG@20"
)
