"""Counterfactual scenarios: one ranker call scores the full context and every masked variant of it.

Row 0 of a scenario batch is the unmasked context; row i (i >= 1) applies masks[i - 1]. Every candidate is scored
independently of the other candidates, so a row masks one piece of evidence for all candidates at once and the
effect of that evidence on candidate c is `score[0, c] - score[i, c]`.

Mask kinds (all work without retraining and without scatter ops in the models):
- ("history_item", item_idx): every history slot holding that product (the ranker's `history_slots`) gets mask 0;
- ("repeat", None): the repeat-purchase features of every candidate set to zero (= never bought);
- ("popularity", None): the shop-wide popularity features set to zero (orders, repeat rate, season);
- ("similar_customers", None): the per-customer popularity column (how much the user's most similar customers buy
  the candidate) set to zero;
- ("query", None): query_mask = 0 (rankers that read the query);
- ("query_embedding", emb): the query replaced by another embedding, e.g. the query with one term removed;
- ("all", [masks]): several masks applied together (the "none of the listed evidence" scenario);
- ("discovery", None): the variant's repeat-vs-explore term, which no ranker reads (it is added after fusion and
  measured analytically, libs.explain.page);
- ("frequency", None): the purchase-frequency prior's term of the fused score, which no ranker reads either
  (measured analytically the same way).
A mask that a ranker's inputs do not carry (e.g. "query" for gnn_ranker) leaves them unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from libs.features import POP_FEATURE_NAMES
from libs.model_io import POP_FEATS, QUERY_EMB, QUERY_MASK, REPEAT_FEATS

KINDS = (
    "history_item",
    "repeat",
    "popularity",
    "similar_customers",
    "query",
    "query_embedding",
    "all",
    "discovery",
    "frequency",
)
SIMILAR_COLUMN = POP_FEATURE_NAMES.index("log_similar_customers_score")
SHOP_WIDE_COLUMNS = [i for i in range(len(POP_FEATURE_NAMES)) if i != SIMILAR_COLUMN]


@dataclass(frozen=True)
class Mask:
    kind: str
    value: Any = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown mask kind {self.kind!r}; one of {KINDS}")


def _apply(out: dict[str, np.ndarray], mask: Mask, history_slots: Sequence[tuple[str, str]]) -> None:
    kind, value = mask.kind, mask.value
    if kind == "history_item":
        for ids, slot_mask in history_slots:
            out[slot_mask][out[ids] == int(value) + 1] = 0.0
    elif kind == "repeat" and REPEAT_FEATS in out:
        out[REPEAT_FEATS][:] = 0.0
    elif kind == "popularity" and POP_FEATS in out:
        out[POP_FEATS][..., SHOP_WIDE_COLUMNS] = 0.0
    elif kind == "similar_customers" and POP_FEATS in out:
        out[POP_FEATS][..., SIMILAR_COLUMN] = 0.0
    elif kind == "query" and QUERY_MASK in out:
        out[QUERY_MASK][:] = 0.0
    elif kind == "query_embedding" and QUERY_EMB in out:
        out[QUERY_EMB][:] = np.asarray(value, np.float32).reshape(1, -1)
    elif kind == "all":
        for m in value:
            _apply(out, m, history_slots)


def mask_one(
    inputs: dict[str, np.ndarray], mask: Mask, history_slots: Sequence[tuple[str, str]]
) -> dict[str, np.ndarray]:
    """A copy of a single-scenario input dict (B = 1) with `mask` applied."""
    out = {k: v.copy() for k, v in inputs.items()}
    _apply(out, mask, history_slots)
    return out


def masked_scenarios(
    inputs: dict[str, np.ndarray], masks: Sequence[Mask], history_slots: Sequence[tuple[str, str]]
) -> dict[str, np.ndarray]:
    """Batch [1 + len(masks), ...]: row 0 = `inputs` as they are, row i = masks[i - 1] applied."""
    if next(iter(inputs.values())).shape[0] != 1:
        raise ValueError("masked_scenarios takes a single scenario (batch axis 1)")
    # One copy of the inputs per row, each mask applied in place to its row's views (no per-row dict of copies).
    batch = {k: np.repeat(v, 1 + len(masks), axis=0) for k, v in inputs.items()}
    for i, m in enumerate(masks, 1):
        _apply({k: b[i : i + 1] for k, b in batch.items()}, m, history_slots)
    return batch
