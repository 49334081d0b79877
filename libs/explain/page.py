"""Explain a page of results: the one entry point shared by the explanation service and the offline fidelity test.

For one user context and the page's candidates, every piece of evidence becomes one masked scenario, plus the
scenario with none of the listed evidence; all go to each ranker in ONE batched call. With the fused score of
libs.fusion (a fixed linear map of the models' scores, see there):

- `score` is exactly the fused score ranking served for the item (same models, inputs and normalisation);
- a piece's contribution = score - fused score with that piece masked;
- `baseline` = fused score with every listed piece masked. score - baseline = sum of contributions + interaction:
  the pieces' effects add up exactly only when the rankers are additive in them; the remainder is the interaction
  between pieces, reported as is (`Explanation.interaction`) rather than spread over the pieces.

No gradients: it works unchanged on TensorRT engines. The sentence names only evidence whose measured
contribution is positive.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from libs import domain as d
from libs.errors import UnavailableError
from libs.explain.evidence import Piece, none_of, pieces_for
from libs.explain.masking import masked_scenarios
from libs.explain.wording import MIN_CONTRIBUTION, confidence, sentence
from libs.features import FeatureStore, UserContext
from libs.fusion import Fusion
from libs.rankers import get as ranker
from libs.scoring import Infer, run_models

MAX_EVIDENCE_SHOWN = 8
METHOD = "counterfactual-masking"


@dataclass(frozen=True)
class Attribution:
    """Fused scores of one page: score [C], contribution of each piece [E, C], baseline [C]."""

    score: np.ndarray
    contributions: np.ndarray
    baseline: np.ndarray


def attribute(fusion: Fusion, scores: dict[str, np.ndarray]) -> Attribution:
    """From per-model scores [1 + E + 1, C] (full, each piece masked, all masked) to fused attributions."""
    fused = fusion.combine(scores)
    return Attribution(fused[0], fused[:1] - fused[1:-1], fused[-1])


async def explain_page(store: FeatureStore, titles: Sequence[str], fusion: Fusion, infer: Infer,
                       models: Sequence[str], ctx: UserContext, fresh_items: set[int], cand_idx: np.ndarray,
                       product_ids: Sequence[str], query: str, query_emb: np.ndarray | None,
                       term_emb: np.ndarray | None, timeout: float, degradations: list[d.Degradation]
                       ) -> list[d.Explanation]:
    base = {m: ranker(m).inputs(store, ctx, cand_idx, query_emb if ranker(m).reads_query else None) for m in models}
    pieces = pieces_for(ctx, base, fresh_items, query, term_emb)
    masks = [p.mask for p in pieces] + [none_of(pieces)]
    inputs = {m: masked_scenarios(x, masks, ranker(m).history_slots) for m, x in base.items()}
    scores = await run_models(infer, inputs, timeout, degradations)
    if not scores:
        raise UnavailableError("explanation: no ranker answered: " + "; ".join(x.reason for x in degradations))
    return explain_items(store, titles, product_ids, cand_idx, pieces, attribute(fusion, scores))


def explain_items(store: FeatureStore, titles: Sequence[str], product_ids: Sequence[str], cand_idx: np.ndarray,
                  pieces: Sequence[Piece], att: Attribution) -> list[d.Explanation]:
    out = []
    for c, item in enumerate(cand_idx):
        neighbours = set((store.nbr_ids[item] - 1).tolist()) if item >= 0 else set()
        evidence = []
        for p, piece in enumerate(pieces):
            value = float(att.contributions[p, c])
            if abs(value) <= MIN_CONTRIBUTION:
                continue
            kind = piece.kind
            if kind is d.EvidenceKind.PAST_PURCHASE and piece.item in neighbours:
                kind = d.EvidenceKind.CO_PURCHASE_NEIGHBOUR
            product = str(store.item_index[piece.item]) if piece.item >= 0 else ""
            evidence.append(d.Evidence(kind, value, product, titles[piece.item] if piece.item >= 0 else "",
                                       piece.text))
        evidence.sort(key=lambda e: -e.contribution)
        shown = _shown(evidence)
        score, baseline = float(att.score[c]), float(att.baseline[c])
        total = float(att.contributions[:, c].sum())
        out.append(d.Explanation(shown, sentence(shown), confidence(score, att.score), METHOD, score=score,
                                 baseline=baseline, interaction=score - baseline - total))
    return out


def _shown(evidence: list[d.Evidence]) -> list[d.Evidence]:
    """The strongest pieces, keeping any just-recorded purchase that helped even when it is not in the top."""
    shown = evidence[:MAX_EVIDENCE_SHOWN]
    recent = [e for e in evidence[MAX_EVIDENCE_SHOWN:]
              if e.kind is d.EvidenceKind.RECENT_EVENT and e.contribution > MIN_CONTRIBUTION][:2]
    if recent:
        shown = sorted(shown[:MAX_EVIDENCE_SHOWN - len(recent)] + recent, key=lambda e: -e.contribution)
    return shown
