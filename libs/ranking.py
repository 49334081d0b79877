"""Ranking: assemble model inputs from the feature store, score with the rankers on Triton concurrently, fuse as
trained (with the purchase-frequency prior), add the variant's repeat-vs-explore term (libs.fusion) and query
relevance for Search (libs.relevance), diversify with MMR. Answers with what it has when a model is down; never
past the deadline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from libs import domain as d
from libs.bundles import BUNDLE_MODEL
from libs.errors import UnavailableError, invalid
from libs.features import FeatureStore
from libs.fusion import DISCOVERY, FUSED, PRIOR, Fusion, never_bought
from libs.history import user_context
from libs.rankers import get as ranker
from libs.relevance import RELEVANCE, TitleMatcher
from libs.scoring import (
    EncodeQuery,
    Infer,
    Versions,
    NewSignals,
    NewTitles,
    arm_of,
    encode_or_degrade,
    prior_scores,
    resolve_candidates,
    run_models,
)
from libs.diversity import mmr_order

log = logging.getLogger(__name__)


@dataclass
class Ranked:
    items: list[d.ScoredItem]
    degradations: list[d.Degradation]
    versions: list[d.ModelVersion]


class RankingCore:
    def __init__(
        self,
        store: FeatureStore,
        titles: Sequence[str],
        fusion: Fusion,
        infer: Infer,
        encode: EncodeQuery,
        versions: Versions,
        bundle_id: str = "",
        new_titles: NewTitles | None = None,
        new_signals: NewSignals | None = None,
    ) -> None:
        self.store = store
        self.new_signals = new_signals  # new products' recorded-purchase signals (libs.fresh_signals)
        self.titles = list(titles)
        self.matcher = TitleMatcher(self.titles)
        self.fusion = fusion
        self.infer = infer
        self.encode = encode
        self.versions = versions
        self.bundle_id = bundle_id  # named in every response's model_versions (libs/bundles.py)
        self.new_titles = new_titles  # products newer than the bundle, from the catalogue; None = refused

    async def rank(
        self,
        user_id: str,
        query: str,
        product_ids: Sequence[str],
        page_size: int,
        variant: str,
        diversity: float,
        recent: Sequence[d.UserEvent],
        timeout: float,
    ) -> Ranked:
        arm = arm_of(variant)
        models = arm.models
        if not 0.0 <= diversity <= 1.0:
            raise invalid("diversity", "must be in [0, 1]")
        if not product_ids:
            raise invalid("product_ids", "must contain at least one product")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        cands = await resolve_candidates(
            self.store,
            self.titles,
            product_ids,
            self.new_titles,
            self.encode,
            timeout * 0.4,
            new_signals=self.new_signals,
        )
        cand_idx = cands.idx
        degradations: list[d.Degradation] = []
        ctx = user_context(self.store, user_id, recent)
        query_emb = None
        if query and any(ranker(m).reads_query for m in models):
            emb = await encode_or_degrade(self.encode, [query], timeout * 0.4, degradations)
            query_emb = None if emb is None else emb[0]
        inputs = {
            m: cands.with_new_signals(
                ranker(m).inputs(self.store, ctx, cand_idx, query_emb if ranker(m).reads_query else None, cands.new_emb)
            )
            for m in models
        }
        scores = await run_models(self.infer, inputs, max(deadline - loop.time(), 0.001), degradations)
        if not scores:
            raise UnavailableError("ranking: no ranker answered: " + "; ".join(x.reason for x in degradations))
        per_model = {m: s[0] for m, s in scores.items()}  # one scenario
        fusion = self.fusion.for_shelf(arm.shelf)
        prior = prior_scores(fusion, self.store, ctx, cand_idx)
        fused = fusion.combine(per_model | prior)
        discovery = fusion.discovery(arm.explore, never_bought(ctx.items, cand_idx)) if arm.explore else 0.0
        # Search: what the shopper typed first (libs.relevance); the fused personal score orders within a grade.
        relevance = self.matcher.relevance(query, cand_idx, cands.titles) if query else np.zeros(len(cand_idx))
        served = fused + discovery + relevance
        k = page_size or len(cand_idx)
        order = mmr_order(served, self.store.candidate_embeddings(cand_idx, cands.new_emb), diversity, k)
        items = []
        for i in order:
            parts = {**{m: float(s[i]) for m, s in per_model.items()}, FUSED: float(fused[i])}
            if prior:
                parts[PRIOR] = float(prior[PRIOR][i])
            if arm.explore:
                parts[DISCOVERY] = float(discovery[i])
            if query:
                parts[RELEVANCE] = float(relevance[i])
            items.append(d.ScoredItem(product_ids[i], cands.titles[i], float(served[i]), parts))
        versions = [d.ModelVersion(m, await self.versions(m)) for m in scores]
        if self.bundle_id:
            versions.append(d.ModelVersion(BUNDLE_MODEL, self.bundle_id))
        return Ranked(items, degradations, versions)
