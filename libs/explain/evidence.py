"""The pieces of evidence an explanation measures (what the rankers read about this user and query), and the facts
each piece read, for the sentence to name: counts and dates from the same data the models read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from libs import domain as d
from libs.explain.masking import Mask
from libs.features import DAY, FeatureStore, UserContext, orders_in_window
from libs.features.frequency import frequency_text, order_counts
from libs.features.popularity import nearest_customers
from libs.features.user import own_cycle_days
from libs.model_io import MAX_SCENARIOS
from libs.relevance import analyse
from libs.rankers import get as ranker
from libs.text import drop_term, query_terms

MAX_QUERY_TERMS = 8
# One batch holds the full context, every piece and the "none of the listed evidence" scenario.
MAX_PIECES = MAX_SCENARIOS - 2
# Leave room for repeat, popularity, similar customers and the query terms.
MAX_HISTORY_EVIDENCE = MAX_PIECES - 3 - MAX_QUERY_TERMS
RECENT_DAYS = 28  # "lately": the window of the popularity feature the rankers read (log_orders_28d)


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


def history_pieces(
    ctx: UserContext,
    inputs: Mapping[str, Mapping[str, np.ndarray]],
    fresh_items: set[int],
    limit: int = MAX_HISTORY_EVIDENCE,
) -> list[Piece]:
    return [
        Piece(
            Mask("history_item", i),
            d.EvidenceKind.RECENT_EVENT if i in fresh_items else d.EvidenceKind.PAST_PURCHASE,
            item=i,
        )
        for i in items_read(ctx, inputs)[:limit]
    ]


def pieces_for(ctx: UserContext, inputs: Mapping[str, Mapping[str, np.ndarray]], fresh_items: set[int]) -> list[Piece]:
    """The user-side pieces: each past purchase the rankers read, the repeat-purchase signal, popularity with all
    shoppers and (apart) with the user's most similar customers."""
    pieces = history_pieces(ctx, inputs, fresh_items)
    if len(ctx):
        pieces.append(Piece(Mask("repeat"), d.EvidenceKind.REPEAT_PURCHASE))
    pieces.append(Piece(Mask("popularity"), d.EvidenceKind.POPULARITY))
    if len(ctx):  # an empty history has no similar customers: the column is 0
        pieces.append(Piece(Mask("similar_customers"), d.EvidenceKind.SIMILAR_CUSTOMERS))
    return pieces[: MAX_PIECES - MAX_QUERY_TERMS]


def term_pieces(query: str, term_embeddings: np.ndarray) -> list[Piece]:
    """One piece per query term: the query replaced by the embedding of the query without that term."""
    return [
        Piece(Mask("query_embedding", emb), d.EvidenceKind.QUERY_TERM, text=term)
        for term, emb in zip(query_terms(query)[:MAX_QUERY_TERMS], term_embeddings)
    ]


def none_of(pieces: Sequence[Piece]) -> Mask:
    """Every listed piece masked at once."""
    return Mask("all", tuple(p.mask for p in pieces))


def term_drops(query: str) -> list[str]:
    """The query with each of its terms removed, in term order (one text_encoder call)."""
    return [drop_term(query, i) for i in range(min(len(query_terms(query)), MAX_QUERY_TERMS))]


@dataclass(frozen=True)
class Fact:
    """What a piece read about one candidate, for people (common.proto Evidence: text, count, window_days,
    last_time)."""

    text: str = ""
    count: int = 0
    window_days: int = 0
    last_time: float = 0.0
    interval_days: int = 0


def own_orders(ctx: UserContext) -> dict[int, Fact]:
    """item -> the user's orders of it (distinct baskets), the time of the last one and their own repurchase interval
    (libs.features.user.own_cycle_days, what the repeat features read)."""
    items, counts = order_counts(ctx)
    last = dict(zip(ctx.items.tolist(), ctx.ts.tolist()))  # oldest first: the last one wins
    cycle = own_cycle_days(ctx, items)
    return {
        i: Fact(count=n, last_time=last[i], interval_days=int(round(c)) if np.isfinite(c) else 0)
        for i, n, c in zip(items.tolist(), counts.tolist(), cycle.tolist())
    }


def shop_orders(store: FeatureStore, cand_idx: np.ndarray, new_pop: np.ndarray | None = None) -> list[Fact]:
    """Per candidate: its orders by all shoppers in the last RECENT_DAYS days, or all time when there were none.
    Products newer than the bundle (index < 0) read their recorded orders from `new_pop` (libs.features.fresh), the
    rows the rankers read for them; without it, or with none recorded, no fact."""
    cand_idx = np.asarray(cand_idx, np.int64)
    rows = store.pop[np.clip(cand_idx, 0, None)].copy()
    new = cand_idx < 0
    rows[new] = 0.0 if new_pop is None else np.asarray(new_pop)[new]
    recent, ever = orders_in_window(rows, RECENT_DAYS), orders_in_window(rows, None)
    return [
        Fact() if c < 0 and not e else Fact(count=int(r), window_days=RECENT_DAYS) if r else Fact(count=int(e))
        for c, r, e in zip(cand_idx.tolist(), recent.tolist(), ever.tolist())
    ]


def similar_buyers(store: FeatureStore, ctx: UserContext, cand_idx: np.ndarray) -> list[Fact]:
    """Per candidate: how many of the user's most similar customers (libs.features.neighbours, the customers the
    similar-customers feature averages) bought it in the last RECENT_DAYS days, or ever when none did lately."""
    cand_idx = np.asarray(cand_idx, np.int64)
    if store.neighbours is None or not len(ctx):
        return [Fact() for _ in cand_idx]
    rows = nearest_customers(store, ctx)
    cols = np.clip(cand_idx, 0, None)
    # Columns first: a page's few candidates out of a column-major matrix, then the neighbours' rows, dense.
    ever = (store.neighbours.by_item[:, cols].toarray()[rows] != 0).sum(axis=0)
    lately = _recent_buyers(store)[:, cols].toarray()[rows].sum(axis=0)
    return [
        Fact() if c < 0 else Fact(count=int(n), window_days=RECENT_DAYS) if n else Fact(count=int(e))
        for c, n, e in zip(cand_idx.tolist(), lately.tolist(), ever.tolist())
    ]


def _recent_buyers(store: FeatureStore) -> sp.csc_matrix:
    """[customers in the neighbours' row order, items] 1 where the customer bought the item in the last RECENT_DAYS
    days before the store's now; built once per store (a loop over every customer, ~0.1 s)."""
    cached = getattr(store, "_recent_buyers", None)
    if cached is None:
        since = store.now - RECENT_DAYS * DAY
        rows, cols = [], []
        for r, user in enumerate(store.neighbours.user_ids):
            ctx = store.users[user]
            items = np.unique(ctx.items[ctx.ts >= since])
            rows.append(np.full(len(items), r, np.int64))
            cols.append(items)
        data = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        cached = sp.csc_matrix(
            (np.ones(len(data), np.int64), (data, np.concatenate(cols) if cols else data)),
            shape=store.neighbours.by_user.shape,
        )
        store._recent_buyers = cached
    return cached


def facts_for(
    store: FeatureStore,
    ctx: UserContext,
    pieces: Sequence[Piece],
    cand_idx: np.ndarray,
    new_pop: np.ndarray | None = None,
) -> dict[int, list[Fact]]:
    """piece index -> its facts per candidate, for the pieces that read a fact (`new_pop`: see shop_orders)."""
    cand = np.asarray(cand_idx, np.int64).tolist()
    own = own_orders(ctx)
    out: dict[int, list[Fact]] = {}
    for p, piece in enumerate(pieces):
        if piece.item >= 0:
            out[p] = [own.get(piece.item, Fact())] * len(cand)
        elif piece.kind is d.EvidenceKind.REPEAT_PURCHASE:
            out[p] = [own.get(c, Fact()) for c in cand]
        elif piece.kind is d.EvidenceKind.POPULARITY:
            out[p] = shop_orders(store, cand_idx, new_pop)
        elif piece.kind is d.EvidenceKind.SIMILAR_CUSTOMERS:
            out[p] = similar_buyers(store, ctx, cand_idx)
        elif piece.kind is d.EvidenceKind.PURCHASE_FREQUENCY:
            shop = shop_orders(store, cand_idx)
            out[p] = [
                replace(own[c], text=text) if c in own else Fact(text, s.count, s.window_days)
                for c, text, s in zip(cand, frequency_text(store, ctx, cand_idx), shop)
            ]
    return out


def placements(
    store: FeatureStore,
    titles: Sequence[str],
    shelf: d.Shelf | None,
    context: Sequence[int],
    cand_idx: np.ndarray,
    cand_titles: Sequence[str],
) -> list[d.Evidence | None]:
    """Per candidate (`cand_titles`: their titles, newer products' too), what placed it on a context shelf (None
    elsewhere, and on FREQUENTLY_BOUGHT_TOGETHER for products newer than the bundle, which its counts do not hold):

    - FREQUENTLY_BOUGHT_TOGETHER: the context product it shares the most invoices with and that count, from the
      co-purchase counts the shelf's candidates came from (libs.shelves.frequently_bought_together);
    - SIMILAR_ITEMS: the context product and the words of the candidate's title that the context title has too
      (analysed as Search analyses them: "bags" is "bag"); none shared when only the meaning is close.

    Contribution 0: the rankers never read context products, so masking one changes no score."""
    out: list[d.Evidence | None] = [None] * len(cand_idx)
    if shelf not in (d.Shelf.FREQUENTLY_BOUGHT_TOGETHER, d.Shelf.SIMILAR_ITEMS) or not context:
        return out
    known = [int(c) for c in cand_idx]
    if shelf is d.Shelf.FREQUENTLY_BOUGHT_TOGETHER:
        counts = store.copurchase[list(context)][:, [max(c, 0) for c in known]].toarray()  # [context, candidates]
        for j, c in enumerate(known):
            best = int(np.argmax(counts[:, j]))
            if c >= 0 and counts[best, j] > 0:
                x = context[best]
                n = int(counts[best, j])
                out[j] = d.Evidence(d.EvidenceKind.BOUGHT_TOGETHER, 0.0, _pid(store, x), titles[x], count=n)
        return out
    x = context[0]
    wanted = set(analyse(titles[x]))
    for j, title in enumerate(cand_titles):
        words = [w for w in dict.fromkeys(title.lower().split()) if (a := analyse(w)) and set(a) <= wanted]
        out[j] = d.Evidence(d.EvidenceKind.SHARES_WITH, 0.0, _pid(store, x), titles[x], " ".join(words))
    return out


def _pid(store: FeatureStore, item: int) -> str:
    return str(store.item_index[item])
