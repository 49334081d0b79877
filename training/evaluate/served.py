"""The served Search path in process, for `make eval`: the RetrievalCore and RankingCore the services run, over the
same ONNX files (libs.onnx_runner: ONNX Runtime instead of Triton, same `infer` signature) and a feature store built
at the split's cut-off. What the evaluation measures for Search is what the gateway serves: retrieval's candidates,
ordered by query relevance plus the fused personal score (libs.relevance, libs.fusion)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from libs.config import REPOSITORY, models_dir as default_models_dir
from libs.features import FeatureStore
from libs.fusion import Fusion
from libs.model_io import FUSION_FILE, ITEM_EMBEDDINGS_FILE
from libs.onnx_runner import OnnxModels
from libs.triton.text import encoder
from libs.ranking import RankingCore
from libs.retrieval import RetrievalCore
from training.evaluate.registry import register_searcher
from training.evaluate.split import TrainData

CANDIDATES = 200  # what the gateway asks retrieval for
DEADLINE_S = 60.0  # offline: no deadline pressure


class ServedSearch:
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
        self.ranking = RankingCore(self.store, titles, Fusion.load(self.models_dir / FUSION_FILE), models.infer,
                                   encode, version)

    def search(self, query: str, user_id: str | None, k: int) -> np.ndarray:
        return asyncio.run(self.search_async(query, user_id or "", k))

    async def search_async(self, query: str, user_id: str, k: int) -> np.ndarray:
        candidates, _ = await self.retrieval.query_candidates(query, user_id, CANDIDATES, DEADLINE_S)
        if not candidates:
            return np.zeros(0, np.int64)
        ranked = await self.ranking.rank(user_id, query, [c.product_id for c in candidates], k, "fused", 0.0, [],
                                         DEADLINE_S)
        return self.store.item_index.get_indexer([i.product_id for i in ranked.items]).astype(np.int64)


register_searcher("served_search", ServedSearch,
                  description="the gateway's Search path in process: retrieval + relevance + fused rankers (PROXY)")
