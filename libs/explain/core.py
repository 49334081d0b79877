"""Explanation: validate, encode the query (and, concurrently with the rankers, its term variants) within the
deadline, then explain the page with the shared entry point (libs.explain.explain_page: masked scenarios re-scored
in one batched call per ranker, plus one for the query's term scenarios on the rankers that read the query)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

import numpy as np

from libs import domain as d
from libs.bundles import BUNDLE_MODEL
from libs.errors import FailedPreconditionError, invalid
from libs.explain import explain_page, term_drops
from libs.explain.evidence import placements
from libs.explain.page import with_placements
from libs.features import FeatureStore
from libs.fusion import Fusion
from libs.history import fresh_purchases, user_context
from libs.rankers import get as ranker
from libs.relevance import TitleMatcher
from libs.scoring import (
    EncodeQuery,
    Infer,
    NewSignals,
    NewTitles,
    Versions,
    arm_of,
    encode_or_degrade,
    resolve_candidates,
)

MAX_ITEMS = 100
BUNDLE_NOT_LOADED = "BUNDLE_NOT_LOADED"  # ErrorInfo reason: asked to explain with a bundle this service does not hold


@dataclass
class Explained:
    explanations: list[d.Explanation]
    degradations: list[d.Degradation]
    versions: list[d.ModelVersion]


class ExplanationCore:
    def __init__(
        self,
        store: FeatureStore,
        titles: Sequence[str],
        fusion: Fusion,
        infer: Infer,
        encode: EncodeQuery | None,
        versions: Versions | None = None,
        bundle_id: str = "",
        new_titles: NewTitles | None = None,
        new_signals: NewSignals | None = None,
    ) -> None:
        self.store = store
        self.new_signals = new_signals  # new products' recorded-purchase signals (libs.fresh_signals)
        self.versions = versions
        self.bundle_id = bundle_id  # the bundle whose models and side files this core holds (libs/bundles.py)
        self.titles = list(titles)
        self.matcher = TitleMatcher(self.titles)
        self.fusion = fusion
        self.infer = infer
        self.encode = encode
        self.new_titles = new_titles  # products newer than the bundle, from the catalogue; None = refused

    async def explain(
        self,
        user_id: str,
        query: str,
        product_ids: Sequence[str],
        variant: str,
        recent: Sequence[d.UserEvent],
        timeout: float,
        bundle_id: str = "",
        all_evidence: bool = False,
        shelf: d.Shelf | None = None,
        context: Sequence[str] = (),
    ) -> Explained:
        """`bundle_id`: the bundle that must explain ("" = the one held); `all_evidence`: every measured piece,
        not only the strongest; `shelf`, `context`: the Recommend shelf and its context products (a context shelf's
        explanations name the context product that placed each result on it)."""
        if bundle_id and bundle_id != self.bundle_id:
            raise FailedPreconditionError(
                f"bundle {bundle_id} is no longer loaded (serving {self.bundle_id})",
                BUNDLE_NOT_LOADED,
                {"bundle_id": bundle_id, "loaded": self.bundle_id},
            )
        arm = arm_of(variant)
        models = arm.models
        if not 1 <= len(product_ids) <= MAX_ITEMS:
            raise invalid("product_ids", f"must contain 1..{MAX_ITEMS} products")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Without an encoder (offline callers) products newer than the bundle are refused by name.
        cands = await resolve_candidates(
            self.store,
            self.titles,
            product_ids,
            self.new_titles if self.encode is not None else None,
            self.encode,
            timeout * 0.3,
            new_signals=self.new_signals,
        )
        cand_idx = cands.idx
        degradations: list[d.Degradation] = []
        ctx = user_context(self.store, user_id, recent)
        fresh = {int(self.store.item_index.get_loc(p)) for p, _ in fresh_purchases(self.store, recent)}
        query_emb = term_emb = None
        if query and self.encode is not None and any(ranker(m).reads_query for m in models):
            # The query alone (retrieval encoded it already, so Triton's response cache answers) and, at the same
            # time, its term variants, which explain_page awaits only after sending the other scenarios.
            drops = term_drops(query)
            term_flags: list[d.Degradation] = []  # reported only when the term scenarios are wanted
            terms = (
                asyncio.ensure_future(encode_or_degrade(self.encode, drops, timeout * 0.3, term_flags))
                if drops
                else None
            )
            emb = await encode_or_degrade(self.encode, [query], timeout * 0.3, degradations)
            if emb is not None:
                query_emb = emb[0]
                term_emb = _flagged(terms, term_flags, degradations) if terms is not None else None
            elif terms is not None:
                terms.cancel()  # no query: no term scenarios
        explanations = await explain_page(
            self.store,
            self.titles,
            self.fusion.for_shelf(arm.shelf),
            self.infer,
            models,
            ctx,
            fresh,
            cand_idx,
            product_ids,
            query,
            query_emb,
            term_emb,
            max(deadline - loop.time(), 0.001),
            degradations,
            self.matcher,
            arm.explore,
            all_evidence,
            cands.titles,
            cands.new_emb,
            cands.new_rows,
        )
        placed = placements(
            self.store,
            self.titles,
            shelf,
            [int(self.store.item_index.get_loc(p)) for p in dict.fromkeys(context) if p in self.store.item_index],
            cand_idx,
            cands.titles,
        )
        explanations = with_placements(explanations, placed, product_ids, all_evidence)
        answered = {x.model for x in degradations}
        versions = (
            [d.ModelVersion(m, await self.versions(m)) for m in models if m not in answered] if self.versions else []
        )
        if self.bundle_id:
            versions.append(d.ModelVersion(BUNDLE_MODEL, self.bundle_id))
        return Explained(explanations, degradations, versions)


async def _flagged(
    task: Awaitable[np.ndarray | None], flags: list[d.Degradation], into: list[d.Degradation]
) -> np.ndarray | None:
    out = await task
    into.extend(flags)
    return out
