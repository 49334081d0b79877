"""Explanation: for the page's results, mask each piece of evidence and re-score on Triton (one batched call
per ranker), then turn the measured contributions into typed evidence, a sentence and a confidence."""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from libs import domain as d
from libs import explainer
from libs.errors import invalid
from libs.features import FeatureStore
from libs.fusion import Fusion
from libs.history import fresh_purchases, user_context
from libs.model_io import TRANSFORMER_RANKER
from libs.scoring import VARIANTS, EncodeQuery, Infer, build_inputs, candidate_indices, encode_or_degrade, \
    run_models

MAX_ITEMS = 100


@dataclass
class Explained:
    explanations: list[d.Explanation]
    degradations: list[d.Degradation]


class ExplanationCore:
    def __init__(self, store: FeatureStore, titles: Sequence[str], fusion: Fusion, infer: Infer,
                 encode: EncodeQuery) -> None:
        self.store = store
        self.titles = list(titles)
        self.fusion = fusion
        self.infer = infer
        self.encode = encode

    async def explain(self, user_id: str, query: str, product_ids: Sequence[str], variant: str,
                      recent: Sequence[d.UserEvent], timeout: float) -> Explained:
        models = VARIANTS.get(variant or "fused")
        if models is None:
            raise invalid("variant", f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
        if not 1 <= len(product_ids) <= MAX_ITEMS:
            raise invalid("product_ids", f"must contain 1..{MAX_ITEMS} products")
        cand_idx = candidate_indices(self.store, product_ids)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        degradations: list[d.Degradation] = []
        ctx = user_context(self.store, user_id, recent)
        fresh = {int(self.store.item_index.get_loc(p)) for p, _ in fresh_purchases(self.store, recent)}
        query_emb = term_emb = None
        if query and TRANSFORMER_RANKER in models:
            emb = await encode_or_degrade(self.encode, explainer.term_variants(query), timeout * 0.3, degradations)
            if emb is not None:
                query_emb, term_emb = emb[0], emb[1:]
        pieces = explainer.pieces_for(self.store, ctx, fresh, query, term_emb)
        inputs = {m: explainer.scenario_inputs(build_inputs(m, self.store, ctx, cand_idx, query_emb), pieces)
                  for m in models}
        scores = await run_models(self.infer, inputs, max(deadline - loop.time(), 0.001), degradations)
        explainer.require(scores, [x.reason for x in degradations])
        full, contrib = explainer.contributions(self.fusion, scores)
        return Explained(explainer.explain_items(self.store, self.titles, product_ids, cand_idx, pieces, full, contrib),
                         degradations)
