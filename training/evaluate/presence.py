"""One served result as a set function for attribution libraries: f(binary presence matrix [n, M]) -> served score
[n], over the evidence units the explanation service measures (libs.explain: each past purchase the rankers read,
repeat purchase, popularity, similar customers, each query term, and the model-free additive terms: the
purchase-frequency prior and Search's query relevance).

Row z of the matrix keeps piece i when z[i] = 1 and masks it when z[i] = 0, with the service's masking function
(libs.explain.masked_scenarios, the same Mask per piece); the rows go to the served rankers in one batched call per
ranker, are fused (libs.fusion) and the additive terms whose piece is present are added. So f(ones) is the served
score, f(ones with piece i off) is exactly the scenario the service scores for piece i, and f(zeros) is the
service's baseline scenario. Query terms: a row reads the query without its absent terms (the service's term
scenarios drop one term; several absent terms drop several); the all-absent row switches the query input off, as
the service's baseline does. Every row scored is counted (`rows`), so model evaluations are counted honestly.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from libs import domain as d
from libs.explain import Mask, Piece, masked_scenarios, pieces_for, term_pieces
from libs.explain.evidence import MAX_QUERY_TERMS, term_drops
from libs.features import FeatureStore, UserContext
from libs.fusion import Fusion
from libs.rankers import get as ranker
from libs.relevance import TitleMatcher
from libs.scoring import EncodeQuery, Infer, prior_scores, run_models
from libs.text import query_terms

HISTORY_KINDS = (d.EvidenceKind.PAST_PURCHASE, d.EvidenceKind.CO_PURCHASE_NEIGHBOUR, d.EvidenceKind.RECENT_EVENT)
TERM_KINDS = (d.EvidenceKind.QUERY_TERM, d.EvidenceKind.QUERY_SIMILAR)
TIMEOUT_S = 600.0  # offline: no deadline pressure
CHUNK_ROWS = 256  # presence rows per batched ranker call


def piece_key(kind: d.EvidenceKind, product_id: str = "", text: str = "") -> tuple:
    """What names a piece across the service's Evidence and this game's Piece: the product for purchase evidence,
    the term for query-term evidence, the kind for the rest (one piece each)."""
    if kind in HISTORY_KINDS:
        return ("item", product_id)
    if kind in TERM_KINDS:
        return ("term", text)
    return (kind.name,)


def _drop_terms(terms: Sequence[str], absent: Sequence[int]) -> str:
    gone = set(absent)
    return " ".join(t for i, t in enumerate(terms) if i not in gone)


@dataclass(repr=False)  # its fields hold the feature store and the inputs: a repr takes minutes
class PresenceGame:
    """f for one candidate of one request (`cand_idx` [1]); call it with a [n, M] 0/1 matrix."""

    store: FeatureStore
    fusion: Fusion
    infer: Infer
    models: Sequence[str]
    base: dict[str, dict[str, np.ndarray]]  # per ranker: the request's wire inputs (batch 1)
    pieces: list[Piece]  # ranker-measured pieces first, then the additive ones
    additive: list[np.ndarray]  # [1] each, one per trailing additive piece
    term_masks: dict[frozenset[int], Mask] = field(default_factory=dict)  # absent term positions -> query mask
    term_slots: list[int] = field(default_factory=list)  # piece index of each query term, in term order
    rows: int = 0  # rows scored so far (one row = every ranker on one scenario)

    @property
    def size(self) -> int:
        return len(self.pieces)

    def keys(self, product_ids: Sequence[str]) -> list[tuple]:
        return [piece_key(p.kind, product_ids[p.item] if p.item >= 0 else "", p.text) for p in self.pieces]

    def masks_for(self, z: np.ndarray) -> Mask:
        """The scenario of one presence row: every absent ranker-measured piece masked together."""
        n_measured = len(self.pieces) - len(self.additive)
        absent = [i for i in range(n_measured) if not z[i]]
        terms = set(self.term_slots)
        masks = [self.pieces[i].mask for i in absent if i not in terms]
        if not np.any(z):  # the service's baseline scenario: the other pieces masked and no query at all
            return Mask("all", (*masks, Mask("query")))
        gone = frozenset(self.term_slots.index(i) for i in absent if i in terms)
        if gone:
            masks.append(self.term_masks[gone])
        return Mask("all", tuple(masks))

    def __call__(self, z: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(np.asarray(z)) > 0.5
        if z.shape[1] != self.size:
            raise ValueError(f"presence rows have {z.shape[1]} columns, the game has {self.size} pieces")
        # LIME's 5,000 rows at once would hold GBs of masked inputs on a shared machine
        return np.concatenate([self._score(z[i : i + CHUNK_ROWS]) for i in range(0, len(z), CHUNK_ROWS)])

    def _score(self, z: np.ndarray) -> np.ndarray:
        masks = [self.masks_for(row) for row in z]
        inputs = {
            m: {k: v[1:] for k, v in masked_scenarios(x, masks, ranker(m).history_slots).items()}
            for m, x in self.base.items()
        }
        degradations: list[d.Degradation] = []
        scores = asyncio.run(run_models(self.infer, inputs, TIMEOUT_S, degradations))
        if degradations or set(scores) != set(self.base):
            raise RuntimeError(f"a ranker did not answer: {degradations}")
        self.rows += len(z)
        fused = self.fusion.combine(scores)[:, 0]
        n_measured = self.size - len(self.additive)
        for j, values in enumerate(self.additive):
            fused = fused + z[:, n_measured + j] * float(values[0])
        return fused


async def build_game(
    store: FeatureStore,
    fusion: Fusion,
    infer: Infer,
    models: Sequence[str],
    ctx: UserContext,
    cand_idx: np.ndarray,
    query: str = "",
    encode: EncodeQuery | None = None,
    matcher: TitleMatcher | None = None,
) -> PresenceGame:
    """The game of one candidate with the pieces in explain_page's order (fresh events: none; variant without
    discovery). The query and its term variants are encoded as the explanation service encodes them: the query
    alone, then every single-term drop in one call; drops of several terms in a third call."""
    cand_idx = np.asarray(cand_idx, np.int64)
    reads_query = bool(query) and encode is not None and any(ranker(m).reads_query for m in models)
    query_emb = (await encode([query]))[0] if reads_query else None
    base = {
        m: ranker(m).to_wire(ranker(m).inputs(store, ctx, cand_idx, query_emb if ranker(m).reads_query else None))
        for m in models
    }
    pieces = pieces_for(ctx, base, set())
    term_masks: dict[frozenset[int], Mask] = {}
    term_slots: list[int] = []
    drops = term_drops(query) if reads_query else []
    if drops:
        singles = await encode(drops)
        terms = term_pieces(query, singles)
        term_slots = list(range(len(pieces), len(pieces) + len(terms)))
        pieces += terms
        words = query_terms(query)
        for i, t in enumerate(terms):
            term_masks[frozenset([i])] = t.mask
        several = [frozenset(s) for r in range(2, len(terms) + 1) for s in itertools.combinations(range(len(terms)), r)]
        if several:
            emb = await encode([_drop_terms(words, s) for s in several])
            term_masks |= {s: Mask("query_embedding", e) for s, e in zip(several, emb)}
    additive = []
    for name, values in prior_scores(fusion, store, ctx, cand_idx).items():
        pieces.append(Piece(Mask("frequency"), d.EvidenceKind.PURCHASE_FREQUENCY))
        additive.append(fusion.term(name, values))
    if query and matcher is not None:
        pieces.append(Piece(Mask("query"), d.EvidenceKind.QUERY_MATCH))
        additive.append(np.asarray(matcher.relevance(query, cand_idx, ()), np.float64))
    if len(query_terms(query)) > MAX_QUERY_TERMS:
        raise ValueError(f"query {query!r} has more than {MAX_QUERY_TERMS} terms")
    return PresenceGame(store, fusion, infer, models, base, pieces, additive, term_masks, term_slots)
