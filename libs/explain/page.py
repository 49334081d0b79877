"""Explain a page of results: the one entry point shared by the explanation service and the offline fidelity test.

For one user context and the page's candidates, every piece of evidence becomes one masked scenario, plus the
scenario with none of the listed evidence; all go to each ranker in ONE batched call (Search: the query's term
scenarios in one more call, to the rankers that read the query only, overlapped with encoding the term variants).
With the fused score of libs.fusion (a fixed linear map of the models' scores, see there):

- `score` is exactly the score ranking served for the item: the fused score (same models, inputs and
  normalisation) plus the variant's discovery term plus, for Search, the query relevance of libs.relevance;
- the purchase-frequency prior's term (libs.fusion, PRIOR) is additive and model-free: its contribution is its
  value (a PURCHASE_FREQUENCY piece whose text says what it read: how often the user ordered the product, or its
  rank in recent orders), positive or negative;
- the variant's repeat-vs-explore term (libs.fusion.Fusion.discovery) is additive and model-free: its contribution
  is its value (a DISCOVERY piece, for never-bought products only);
- query relevance is additive and model-free, so its contribution is its value (one QUERY_MATCH piece naming the
  words the title contains); a query term measured through the rankers' query path is QUERY_TERM ("matches")
  only when the title contains it, else QUERY_SIMILAR ("is similar to"): no claimed match the title lacks;
- a piece's contribution = score - fused score with that piece masked;
- `baseline` = fused score with every listed piece masked. score - baseline = sum of contributions + interaction:
  the pieces' effects add up exactly only when the rankers are additive in them; the remainder is the interaction
  between pieces, reported as is (`Explanation.interaction`) rather than spread over the pieces.

No gradients: it works unchanged on TensorRT engines. Each piece also carries the fact it read about the item
(libs.explain.evidence.facts_for: orders, dates, counts), and the sentence (libs.explain.wording) names the claims
whose measured contributions helped most, with those facts.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from libs import domain as d
from libs.errors import UnavailableError
from libs.explain.evidence import Fact, Piece, facts_for, none_of, pieces_for, term_pieces
from libs.explain.masking import Mask, masked_scenarios
from libs.explain.wording import MIN_CONTRIBUTION, confidence, sentence
from libs.features import FeatureStore, UserContext
from libs.features.fresh import NewProductRows
from libs.fusion import Fusion, never_bought
from libs.rankers import get as ranker
from libs.relevance import TitleMatcher
from libs.scoring import Infer, prior_scores, run_models, with_new_signals
from libs.text import query_terms

MAX_EVIDENCE_SHOWN = 8
METHOD = "counterfactual-masking"


@dataclass(frozen=True)
class Attribution:
    """Served scores of one page: score [C], contribution of each piece [E, C], baseline [C]."""

    score: np.ndarray
    contributions: np.ndarray
    baseline: np.ndarray


def attribute(fusion: Fusion, scores: dict[str, np.ndarray], additive: Sequence[np.ndarray] = ()) -> Attribution:
    """From per-model scores [1 + E + 1, C] (full, each piece masked, all masked) and the model-free additive terms
    of the served score, each [C] (the variant's discovery term, Search's query relevance) to attributions of the
    served score; the additive terms are the last pieces, in order, each contributing its value."""
    fused = fusion.combine(scores)
    contributions = fused[:1] - fused[1:-1]
    if not additive:
        return Attribution(fused[0], contributions, fused[-1])
    extra = np.vstack([np.asarray(a, np.float64)[None] for a in additive])
    return Attribution(fused[0] + extra.sum(axis=0), np.vstack([contributions, extra]), fused[-1])


async def explain_page(
    store: FeatureStore,
    titles: Sequence[str],
    fusion: Fusion,
    infer: Infer,
    models: Sequence[str],
    ctx: UserContext,
    fresh_items: set[int],
    cand_idx: np.ndarray,
    product_ids: Sequence[str],
    query: str,
    query_emb: np.ndarray | None,
    term_emb: np.ndarray | Awaitable[np.ndarray | None] | None,
    timeout: float,
    degradations: list[d.Degradation],
    matcher: TitleMatcher | None = None,
    explore: float = 0.0,
    all_evidence: bool = False,
    cand_titles: Sequence[str] = (),
    new_cand_emb: np.ndarray | None = None,
    new_rows: NewProductRows | None = None,
) -> list[d.Explanation]:
    """`explore`: the variant's repeat-vs-explore setting (libs.scoring.Arm). Candidates newer than the bundle
    (cand_idx -1, libs.scoring.Candidates) are scored from `new_cand_emb` and matched by `cand_titles`, with their
    recorded purchases' popularity and co-purchase neighbours from `new_rows`. `term_emb`: the
    embeddings of the
    query with each term removed (libs.explain.term_drops), or an awaitable of them: the rankers score every other
    scenario while the variants are encoded, and only the query-reading rankers score the term scenarios after (for
    the others those rows equal the full row: a mask a ranker does not read leaves its inputs unchanged)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # In wire form before masking (libs/rankers/wire.py): the scenarios copy ids, not title embeddings.
    base = {
        m: ranker(m).to_wire(
            with_new_signals(
                ranker(m).inputs(store, ctx, cand_idx, query_emb if ranker(m).reads_query else None, new_cand_emb),
                cand_idx,
                new_rows,
            )
        )
        for m in models
    }
    pieces = pieces_for(ctx, base, fresh_items)
    # Two "none of the evidence" rows: without and with the query; which one is the baseline depends on whether
    # the query's terms end up measured.
    masks = [p.mask for p in pieces] + [none_of(pieces), Mask("all", (none_of(pieces), Mask("query")))]
    inputs = {m: masked_scenarios(x, masks, ranker(m).history_slots) for m, x in base.items()}

    async def term_rows() -> tuple[list[Piece], dict[str, np.ndarray]]:
        emb = await term_emb if inspect.isawaitable(term_emb) else term_emb
        found = term_pieces(query, emb) if query and query_emb is not None and emb is not None else []
        if not found:
            return [], {}
        readers = {
            m: {
                k: v[1:] for k, v in masked_scenarios(base[m], [p.mask for p in found], ranker(m).history_slots).items()
            }
            for m in models
            if ranker(m).reads_query
        }
        return found, await run_models(infer, readers, max(deadline - loop.time(), 0.001), degradations)

    scores, (terms, term_scores) = await asyncio.gather(run_models(infer, inputs, timeout, degradations), term_rows())
    if not scores:
        raise UnavailableError("explanation: no ranker answered: " + "; ".join(x.reason for x in degradations))
    # Terms count only when every query-reading ranker that answered also scored them.
    measured = bool(terms) and all(m in term_scores for m in scores if ranker(m).reads_query)
    n = len(pieces)
    rows = {}
    for m, s in scores.items():
        middle = [term_scores[m] if ranker(m).reads_query else np.repeat(s[:1], len(terms), axis=0)] if measured else []
        rows[m] = np.vstack([s[: 1 + n], *middle, s[-1:] if measured else s[-2:-1]])
    pieces = pieces + (terms if measured else [])
    # Model-free additive terms of the served score: measured analytically (their value), not masked.
    additive = []
    for name, values in prior_scores(fusion, store, ctx, cand_idx).items():
        pieces.append(Piece(Mask("frequency"), d.EvidenceKind.PURCHASE_FREQUENCY))
        additive.append(fusion.term(name, values))
    if explore:
        pieces.append(Piece(Mask("discovery"), d.EvidenceKind.DISCOVERY))
        additive.append(fusion.discovery(explore, never_bought(ctx.items, cand_idx)))
    if query and matcher:
        pieces.append(Piece(Mask("query"), d.EvidenceKind.QUERY_MATCH))
        additive.append(matcher.relevance(query, cand_idx, cand_titles))
    att = attribute(fusion, rows, additive)
    return explain_items(
        store,
        titles,
        product_ids,
        cand_idx,
        pieces,
        att,
        query,
        matcher if query else None,
        facts_for(store, ctx, pieces, cand_idx, None if new_rows is None else new_rows.pop),
        all_evidence,
        cand_titles,
        None if new_rows is None else new_rows.nbr_ids,
    )


def _query_kind(
    piece: Piece, item: int, query: str, matcher: TitleMatcher | None, title: str = ""
) -> tuple[d.EvidenceKind, str]:
    """Query evidence says "matches" only for words the title contains (`title`: read for items < 0)."""
    if matcher is None or (item < 0 and not title):
        return piece.kind, piece.text
    if piece.kind is d.EvidenceKind.QUERY_MATCH:
        return piece.kind, " ".join(t for t in query_terms(query) if matcher.contains(item, t, title))
    if piece.kind is d.EvidenceKind.QUERY_TERM and not matcher.contains(item, piece.text, title):
        return d.EvidenceKind.QUERY_SIMILAR, piece.text
    return piece.kind, piece.text


def explain_items(
    store: FeatureStore,
    titles: Sequence[str],
    product_ids: Sequence[str],
    cand_idx: np.ndarray,
    pieces: Sequence[Piece],
    att: Attribution,
    query: str = "",
    matcher: TitleMatcher | None = None,
    facts: Mapping[int, Sequence[Fact]] | None = None,
    all_evidence: bool = False,
    cand_titles: Sequence[str] = (),
    new_nbr_ids: np.ndarray | None = None,
) -> list[d.Explanation]:
    """`facts`: piece index -> what the piece read about each candidate (libs.explain.evidence.facts_for);
    `all_evidence`: list every measured piece, not only the strongest (the sentence is the same either way);
    `cand_titles`: the candidates' titles, read for those newer than the bundle (item < 0), and `new_nbr_ids` their
    co-purchase neighbours from recorded purchases (libs.features.fresh; [C, Kc] item_idx + 1)."""
    # Per piece, once: the product it names (a pandas lookup per candidate and piece was a third of the cost).
    named = [(str(store.item_index[p.item]), titles[p.item]) if p.item >= 0 else ("", "") for p in pieces]
    out = []
    for c, item in enumerate(cand_idx):
        if item >= 0:
            neighbours = set((store.nbr_ids[item] - 1).tolist())
        else:
            neighbours = set() if new_nbr_ids is None else set((new_nbr_ids[c] - 1).tolist())
        evidence = []
        for p, piece in enumerate(pieces):
            value = float(att.contributions[p, c])
            if value == 0.0 or (abs(value) <= MIN_CONTRIBUTION and not all_evidence):
                continue
            kind, text = _query_kind(piece, int(item), query, matcher, cand_titles[c] if item < 0 else "")
            fact = facts[p][c] if facts and p in facts else Fact()
            if kind is d.EvidenceKind.PAST_PURCHASE and piece.item in neighbours:
                kind = d.EvidenceKind.CO_PURCHASE_NEIGHBOUR
            evidence.append(
                d.Evidence(
                    kind,
                    value,
                    *named[p],
                    fact.text or text,
                    fact.count,
                    fact.window_days,
                    fact.last_time,
                    fact.interval_days,
                )
            )
        evidence.sort(key=lambda e: -e.contribution)
        shown = _shown([e for e in evidence if abs(e.contribution) > MIN_CONTRIBUTION])
        score, baseline = float(att.score[c]), float(att.baseline[c])
        total = float(att.contributions[:, c].sum())
        out.append(
            d.Explanation(
                evidence if all_evidence else shown,
                sentence(shown, product_ids[c]),
                confidence(score, att.score),
                METHOD,
                score=score,
                baseline=baseline,
                interaction=score - baseline - total,
            )
        )
    return out


def _shown(evidence: list[d.Evidence]) -> list[d.Evidence]:
    """The strongest pieces, keeping any just-recorded purchase that helped even when it is not in the top."""
    shown = evidence[:MAX_EVIDENCE_SHOWN]
    recent = [
        e
        for e in evidence[MAX_EVIDENCE_SHOWN:]
        if e.kind is d.EvidenceKind.RECENT_EVENT and e.contribution > MIN_CONTRIBUTION
    ][:2]
    if recent:
        shown = sorted(shown[: MAX_EVIDENCE_SHOWN - len(recent)] + recent, key=lambda e: -e.contribution)
    return shown


def with_placements(
    explanations: Sequence[d.Explanation],
    placed: Sequence[d.Evidence | None],
    product_ids: Sequence[str],
    all_evidence: bool = False,
) -> list[d.Explanation]:
    """The explanations with what placed each result on its context shelf (libs.explain.evidence.placements) among
    their evidence, at its place by contribution (0), and in the sentence first. Scores, baseline and interaction
    are unchanged: the piece moved no score."""
    out = []
    for ex, piece, product_id in zip(explanations, placed, product_ids):
        if piece is None:
            out.append(ex)
            continue
        listed = ex.evidence if all_evidence else ex.evidence[: MAX_EVIDENCE_SHOWN - 1]
        evidence = sorted([*listed, piece], key=lambda e: -e.contribution)
        out.append(replace(ex, evidence=evidence, sentence=sentence(evidence, product_id)))
    return out
