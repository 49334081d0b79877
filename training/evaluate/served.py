"""The served Search and Recommend paths in process, for `make eval`: the RetrievalCore and RankingCore the services
run, over the same ONNX files (libs.onnx_runner: ONNX Runtime instead of Triton, same `infer` signature) and a
feature store built at the split's cut-off. What the evaluation measures is what the gateway serves:

- Search: retrieval's candidates, ordered by query relevance plus the fused personal score (libs.relevance,
  libs.fusion);
- Recommend (`served_recommend`, a row of the model table): retrieval's user candidates (the rankers' candidate
  pool, asked for uncut as the gateway asks) ranked by the fused score of the "fused" variant. `make eval` reports
  how often its top 20 equals fused_rankers' (the PyTorch checkpoints over the same pool)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from libs.config import REPOSITORY, models_dir as default_models_dir
from libs.features import POOL_MAX, FeatureStore
from libs.fusion import Fusion
from libs.model_io import FUSION_FILE, ITEM_EMBEDDINGS_FILE
from libs.onnx_runner import OnnxModels
from libs.triton.text import encoder
from libs.ranking import RankingCore
from libs.retrieval import RetrievalCore
from libs.gateway import CANDIDATES
from training.evaluate.registry import register, register_searcher
from training.evaluate.split import TrainData
from training.train.trainer import popularity_floor

DEADLINE_S = 60.0  # offline: no deadline pressure


class ServedSearch:
    """The gateway's Search path (retrieval + ranking cores over the served ONNX files)."""

    def __init__(self, repository: Path | None = None, models_dir: Path | None = None) -> None:
        self.repository = Path(repository or REPOSITORY)
        self.models_dir = Path(models_dir or default_models_dir())

    def fit(self, train: TrainData) -> None:
        item_emb = np.load(self.models_dir / ITEM_EMBEDDINGS_FILE)
        product_ids = train.items["product_id"].tolist()
        titles = train.items["title"].tolist()
        self.store = FeatureStore.build(train.purchases, item_emb, train.cutoff, train.guest_sales, product_ids)
        models = OnnxModels(self.repository)
        encode = encoder(models)

        async def version(model: str) -> str:
            return models.version

        self.retrieval = RetrievalCore.over_store(self.store, product_ids, titles, encode)
        self.ranking = RankingCore(
            self.store, titles, Fusion.load(self.models_dir / FUSION_FILE), models.infer, encode, version
        )

    def search(self, query: str, user_id: str | None, k: int) -> np.ndarray:
        return asyncio.run(self.search_async(query, user_id or "", k))

    async def search_async(self, query: str, user_id: str, k: int) -> np.ndarray:
        candidates, _, corrected = await self.retrieval.query_candidates(query, user_id, CANDIDATES, DEADLINE_S)
        if not candidates:
            return np.zeros(0, np.int64)
        ranked = await self.ranking.rank(
            user_id, corrected or query, [c.product_id for c in candidates], k, "fused", 0.0, [], DEADLINE_S
        )
        return self.store.item_index.get_indexer([i.product_id for i in ranked.items]).astype(np.int64)


class ServedRecommend(ServedSearch):
    """The gateway's Recommend path: a full-catalogue score matrix whose pool part is the served order (the rest by
    popularity, below it, as every pool-based scorer here)."""

    def __init__(self, repository: Path | None = None, models_dir: Path | None = None, variant: str = "fused") -> None:
        super().__init__(repository, models_dir)
        self.variant = variant

    def score(self, user_ids: Sequence[str]) -> np.ndarray:
        out = popularity_floor(self.store, len(user_ids))
        for row, user in enumerate(
            tqdm(
                user_ids,
                desc="served recommend",
                unit="user",
                leave=False,
                file=sys.stderr,
                disable=not sys.stderr.isatty(),
            )
        ):
            order = asyncio.run(self.recommend(str(user)))
            out[row, order] = np.arange(len(order), 0, -1, dtype=np.float32)
        return out

    async def recommend(self, user_id: str) -> np.ndarray:
        candidates, _ = await self.retrieval.user_candidates(user_id, [], POOL_MAX)
        ranked = await self.ranking.rank(
            user_id, "", [c.product_id for c in candidates], 0, self.variant, 0.0, [], DEADLINE_S
        )
        return self.store.item_index.get_indexer([i.product_id for i in ranked.items]).astype(np.int64)


register(
    "served_recommend",
    ServedRecommend,
    description="the gateway's Recommend path in process: retrieval's user candidates + fused rankers (ONNX)",
)
register_searcher(
    "served_search",
    ServedSearch,
    description="the gateway's Search path in process: retrieval + relevance + fused rankers (PROXY)",
)
