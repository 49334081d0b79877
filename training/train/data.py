"""Training examples for the rankers: "what did this customer buy in the next 14 days?", at several cut-offs.

For a model trained on purchases before `cutoff`, the example windows are [t_k, t_k + 14 days) with
t_k = cutoff - k * 14 days (k = 1..n_windows): features come from a FeatureStore built at t_k (history,
popularity, co-purchase neighbours all strictly before t_k), positives are the products bought in the window.
Nothing at or after `cutoff` is read.

Candidates per example (sampled again every epoch): the positives (capped), the user's own past items that were
not re-bought (hard negatives: they carry repeat features), co-purchase neighbours of recent items, popularity-
sampled and uniform items. The query path: for a share of examples one positive's title yields a query of one or
two consecutive words, embedded with text_encoder (precomputed per item); then only positives whose title holds the
query words count as positives, the other positives are ignored in the loss.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from libs.features import FeatureStore, UserContext, candidate_pool, stack
from libs.rankers import get as ranker

WINDOW_DAYS = 14
STOP = {"OF", "AND", "THE", "WITH", "IN", "FOR", "SET", "A", "TO", "ON", "IN", "DESIGN", "SMALL", "LARGE"}


@dataclass
class Example:
    store: FeatureStore
    ctx: UserContext
    positives: np.ndarray  # item_idx bought in the window
    cand_pool: np.ndarray  # candidate_pool(store, ctx)


def build_examples(
    purchases: pd.DataFrame,
    guest_sales: pd.DataFrame | None,
    item_emb: np.ndarray,
    cutoff: pd.Timestamp,
    n_windows: int,
    product_ids=None,
) -> list[Example]:
    cutoff = pd.Timestamp(cutoff)
    examples: list[Example] = []
    for k in range(1, n_windows + 1):
        start = cutoff - pd.Timedelta(days=WINDOW_DAYS * k)
        end = start + pd.Timedelta(days=WINDOW_DAYS)
        before = purchases[purchases["ts"] < start]
        if before.empty:
            break
        gs = None if guest_sales is None else guest_sales[guest_sales["ts"] < start]
        store = FeatureStore.build(before, item_emb, start, gs, product_ids)
        window = purchases[(purchases["ts"] >= start) & (purchases["ts"] < end)]
        for user, rows in window.groupby("user_id", sort=True):
            ctx = store.users.get(str(user))
            if ctx is None:
                continue
            pos = np.unique(rows["item_idx"].to_numpy(np.int64))
            pool = candidate_pool(store, ctx)
            if np.isin(pos, pool).any():  # nothing to learn from a window the pool misses entirely
                examples.append(Example(store, ctx, pos, pool))
    return examples


def query_variants(titles: list[str], rng: np.random.Generator, per_item: int = 2) -> tuple[list[str], np.ndarray]:
    """Per item, `per_item` queries of one or two consecutive title words; returns (texts, owner item_idx)."""
    texts, owner = [], []
    for i, title in enumerate(titles):
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z'\-]+", title or "") if w.upper() not in STOP and len(w) > 2]
        if not words:
            continue
        for j in range(per_item):
            n = 1 if (j == 0 or len(words) == 1) else 2
            s = int(rng.integers(0, len(words) - n + 1))
            texts.append(" ".join(words[s : s + n]).lower())
            owner.append(i)
    return texts, np.asarray(owner, np.int64)


@dataclass
class QueryBank:
    texts: list[str]
    owner: np.ndarray  # item_idx the query came from
    emb: np.ndarray  # [n, 384]
    titles_upper: list[str]

    def __post_init__(self) -> None:
        self.by_item: dict[int, np.ndarray] = {}
        order = np.argsort(self.owner, kind="stable")
        bounds = np.flatnonzero(np.r_[True, np.diff(self.owner[order]) != 0, True])
        for a, b in zip(bounds[:-1], bounds[1:]):
            self.by_item[int(self.owner[order[a]])] = order[a:b]

    def matches(self, q: int, items: np.ndarray) -> np.ndarray:
        words = self.texts[q].upper().split()
        return np.array([all(w in self.titles_upper[i] for w in words) for i in items], bool)


def sample_candidates(ex: Example, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The example's candidate pool (libs.features.candidate_pool, what evaluation and recommendations rank),
    subsampled to at most `size` (positives kept first); (cand_idx, labels 1 = bought in the window, 0 = not)."""
    pool = ex.cand_pool
    is_pos = np.isin(pool, ex.positives)
    if len(pool) > size:
        pos, neg = pool[is_pos][:size], pool[~is_pos]
        neg = rng.choice(neg, size - len(pos), replace=False)
        pool = np.concatenate([pos, neg])
        is_pos = np.arange(len(pool)) < len(pos)
    perm = rng.permutation(len(pool))
    return pool[perm], is_pos[perm].astype(np.float32)


def make_batch(
    model: str,
    examples: list[Example],
    rng: np.random.Generator,
    size: int = 256,
    queries: QueryBank | None = None,
    query_share: float = 0.0,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Model inputs (B = len(examples), C = largest pool in the batch, padded) and labels [B, C] (-1 = pad)."""
    rows, labels = [], []
    drawn = [sample_candidates(ex, rng, size) for ex in examples]
    width = max(len(c) for c, _ in drawn)
    for ex, (cand, lab) in zip(examples, drawn):
        pad = width - len(cand)
        cand = np.concatenate([cand, np.zeros(pad, np.int64)])
        lab = np.concatenate([lab, -np.ones(pad, np.float32)])
        q_emb = None
        if queries is not None and ranker(model).reads_query and rng.random() < query_share:
            pos = cand[lab == 1]
            src = int(rng.choice(pos))
            options = queries.by_item.get(src)
            if options is not None:
                q = int(rng.choice(options))
                q_emb = queries.emb[q]
                keep = lab == 1
                ok = queries.matches(q, cand[keep])
                lab = lab.copy()
                lab[np.flatnonzero(keep)[~ok]] = -1.0
        rows.append(ranker(model).inputs(ex.store, ex.ctx, cand, q_emb))
        labels.append(lab)
    return stack(rows), np.stack(labels)
