"""Faithful explanations by counterfactual masking against the served rankers.

For one user context and the results of a page, every piece of evidence (each past purchase the models read,
the repeat-purchase signal, popularity, each query term) becomes one masked scenario; all scenarios go to each
ranker in ONE batched call, and a piece's contribution to a result is fused(full) - fused(masked). No gradients,
so it works unchanged on TensorRT engines. The sentence names only evidence whose measured contribution is
positive. Shared by the explanation service and the offline fidelity evaluation (same code, other `infer`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from libs import domain as d
from libs.errors import UnavailableError
from libs.features import Evidence, FeatureStore, UserContext, masked_scenarios, user_neighbours
from libs.fusion import Fusion
from libs.model_io import MAX_HISTORY, MAX_SCENARIOS, USER_NEIGHBOURS
from libs.text import drop_term, query_terms

MAX_EVIDENCE_SHOWN = 8
MAX_HISTORY_EVIDENCE = MAX_SCENARIOS - 1 - 2 - 8  # leave room for repeat, popularity and up to 8 query terms
MIN_CONTRIBUTION = 1e-4
METHOD = "counterfactual-masking"


@dataclass(frozen=True)
class Piece:
    """A piece of evidence: how to mask it for the models, and what it is for people."""

    mask: Evidence
    kind: d.EvidenceKind
    item: int = -1  # item_idx for purchase evidence
    text: str = ""


def history_pieces(store: FeatureStore, ctx: UserContext, fresh_items: set[int], limit: int) -> list[Piece]:
    """Distinct items the rankers read (transformer window and GNN neighbours), newest first."""
    seen: list[int] = []
    for item in ctx.items[::-1][:MAX_HISTORY]:
        if int(item) not in seen:
            seen.append(int(item))
    # GNN user neighbours are the strongest items over the whole history; include those outside the window.
    ids, _, mask = user_neighbours(ctx, USER_NEIGHBOURS)
    for item in (ids[mask > 0] - 1):
        if int(item) not in seen:
            seen.append(int(item))
    return [Piece(Evidence("history_item", i), d.EvidenceKind.RECENT_EVENT if i in fresh_items
                  else d.EvidenceKind.PAST_PURCHASE, item=i) for i in seen[:limit]]


def pieces_for(store: FeatureStore, ctx: UserContext, fresh_items: set[int], query: str,
               term_embeddings: np.ndarray | None) -> list[Piece]:
    pieces = history_pieces(store, ctx, fresh_items, MAX_HISTORY_EVIDENCE)
    if len(ctx):
        pieces.append(Piece(Evidence("repeat"), d.EvidenceKind.REPEAT_PURCHASE))
    pieces.append(Piece(Evidence("popularity"), d.EvidenceKind.POPULARITY))
    if term_embeddings is not None:
        for term, emb in zip(query_terms(query), term_embeddings):
            pieces.append(Piece(Evidence("query_embedding", emb), d.EvidenceKind.QUERY_TERM, text=term))
    return pieces[:MAX_SCENARIOS - 1]


def contributions(fusion: Fusion, scores: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(fused score of the full context [C], contribution of each piece [E, C]) from per-model [1+E, C] scores."""
    fused = fusion.combine(scores)
    return fused[0], fused[:1] - fused[1:]


def _phrase(ev: d.Evidence) -> str:
    return {
        d.EvidenceKind.PAST_PURCHASE: f"you bought {ev.title}",
        d.EvidenceKind.RECENT_EVENT: f"you just bought {ev.title}",
        d.EvidenceKind.CO_PURCHASE_NEIGHBOUR: f"it is often bought with {ev.title}, which you bought",
        d.EvidenceKind.REPEAT_PURCHASE: "you have bought it before",
        d.EvidenceKind.POPULARITY: "it is popular right now",
        d.EvidenceKind.QUERY_TERM: f'it matches "{ev.text}"',
    }[ev.kind]


def sentence(evidence: Sequence[d.Evidence]) -> str:
    """Names at most two positive pieces: the strongest, and a just-recorded purchase when it helped (shoppers
    expect their newest action to count); claims nothing the contributions do not show."""
    positive = [e for e in evidence if e.contribution > MIN_CONTRIBUTION]
    if not positive:
        return "No single signal stood out: it ranked well on the whole of your profile."
    top = positive[:2]
    recent = next((e for e in positive if e.kind is d.EvidenceKind.RECENT_EVENT), None)
    if recent is not None and recent not in top:
        top = [top[0], recent]
    return "Because " + " and ".join(_phrase(e) for e in top) + "."


def confidence(score: float, page_scores: np.ndarray) -> float:
    """Margin of the result's fused score over the page's mean, squashed to (0, 1)."""
    margin = score - float(np.mean(page_scores))
    return 1.0 / (1.0 + math.exp(-margin))


def explain_items(store: FeatureStore, titles: Sequence[str], product_ids: Sequence[str], cand_idx: np.ndarray,
                  pieces: Sequence[Piece], full: np.ndarray, contrib: np.ndarray) -> list[d.Explanation]:
    out = []
    for c, item in enumerate(cand_idx):
        neighbours = set((store.nbr_ids[item] - 1).tolist()) if item >= 0 else set()
        evidence = []
        for p, piece in enumerate(pieces):
            value = float(contrib[p, c])
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
        out.append(d.Explanation(shown, sentence(shown), confidence(float(full[c]), full), METHOD))
    return out


def _shown(evidence: list[d.Evidence]) -> list[d.Evidence]:
    """The strongest pieces, keeping any just-recorded purchase that helped even when it is not in the top."""
    shown = evidence[:MAX_EVIDENCE_SHOWN]
    recent = [e for e in evidence[MAX_EVIDENCE_SHOWN:]
              if e.kind is d.EvidenceKind.RECENT_EVENT and e.contribution > MIN_CONTRIBUTION][:2]
    if recent:
        shown = sorted(shown[:MAX_EVIDENCE_SHOWN - len(recent)] + recent, key=lambda e: -e.contribution)
    return shown


def scenario_inputs(inputs: dict[str, np.ndarray], pieces: Sequence[Piece]) -> dict[str, np.ndarray]:
    return masked_scenarios(inputs, [p.mask for p in pieces])


def require(scores: dict[str, np.ndarray], reasons: Sequence[str]) -> None:
    if not scores:
        raise UnavailableError("explanation: no ranker answered: " + "; ".join(reasons))


def term_variants(query: str) -> list[str]:
    """The query and the query with each term removed, in that order (one text_encoder call)."""
    return [query] + [drop_term(query, i) for i in range(len(query_terms(query)))]
