"""The pieces of evidence an explanation measures: what the rankers read about this user and query."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from libs import domain as d
from libs.explain.masking import Mask
from libs.features import UserContext
from libs.model_io import MAX_SCENARIOS
from libs.rankers import get as ranker
from libs.text import drop_term, query_terms

MAX_QUERY_TERMS = 8
# One batch holds the full context, every piece and the "none of the listed evidence" scenario.
MAX_PIECES = MAX_SCENARIOS - 2
MAX_HISTORY_EVIDENCE = MAX_PIECES - 2 - MAX_QUERY_TERMS  # leave room for repeat, popularity and the query terms


@dataclass(frozen=True)
class Piece:
    """A piece of evidence: how to mask it for the models, and what it is for people."""

    mask: Mask
    kind: d.EvidenceKind
    item: int = -1  # item_idx for purchase evidence
    text: str = ""


def items_read(ctx: UserContext, inputs: Mapping[str, Mapping[str, np.ndarray]]) -> list[int]:
    """Distinct past purchases present in any ranker's history slots, newest purchase first."""
    read: set[int] = set()
    for model, x in inputs.items():
        for ids, mask in ranker(model).history_slots:
            read.update(int(i) - 1 for i in x[ids][x[mask] > 0].ravel())
    last_seen: dict[int, int] = {}
    for pos, item in enumerate(ctx.items.tolist()):
        last_seen[int(item)] = pos
    return sorted(read, key=lambda i: -last_seen.get(i, -1))


def history_pieces(ctx: UserContext, inputs: Mapping[str, Mapping[str, np.ndarray]], fresh_items: set[int],
                   limit: int = MAX_HISTORY_EVIDENCE) -> list[Piece]:
    return [Piece(Mask("history_item", i), d.EvidenceKind.RECENT_EVENT if i in fresh_items
                  else d.EvidenceKind.PAST_PURCHASE, item=i) for i in items_read(ctx, inputs)[:limit]]


def pieces_for(ctx: UserContext, inputs: Mapping[str, Mapping[str, np.ndarray]], fresh_items: set[int]
               ) -> list[Piece]:
    """The user-side pieces: each past purchase the rankers read, the repeat-purchase and popularity signals."""
    pieces = history_pieces(ctx, inputs, fresh_items)
    if len(ctx):
        pieces.append(Piece(Mask("repeat"), d.EvidenceKind.REPEAT_PURCHASE))
    pieces.append(Piece(Mask("popularity"), d.EvidenceKind.POPULARITY))
    return pieces[:MAX_PIECES - MAX_QUERY_TERMS]


def term_pieces(query: str, term_embeddings: np.ndarray) -> list[Piece]:
    """One piece per query term: the query replaced by the embedding of the query without that term."""
    return [Piece(Mask("query_embedding", emb), d.EvidenceKind.QUERY_TERM, text=term)
            for term, emb in zip(query_terms(query)[:MAX_QUERY_TERMS], term_embeddings)]


def none_of(pieces: Sequence[Piece]) -> Mask:
    """Every listed piece masked at once."""
    return Mask("all", tuple(p.mask for p in pieces))


def term_drops(query: str) -> list[str]:
    """The query with each of its terms removed, in term order (one text_encoder call)."""
    return [drop_term(query, i) for i in range(min(len(query_terms(query)), MAX_QUERY_TERMS))]
