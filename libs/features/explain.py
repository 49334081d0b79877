"""Counterfactual scenarios for explanations: one Triton call scores the full context and every masked variant.

Row 0 of the returned batch is the unmasked scenario; row i (i >= 1) masks `evidence[i - 1]`. Every candidate is
scored independently of the other candidates, so a row masks one piece of evidence for all candidates at once and
the effect of that evidence on candidate c is `score[0, c] - score[i, c]`.

Evidence kinds (all work without retraining and without scatter ops in the model):
- ("history_item", item_idx): every history position (transformer) / user neighbour (gnn) holding that product
  gets mask 0;
- ("history_position", p): one position of the transformer history (p in 0..L-1);
- ("user_neighbour", k): one GNN user neighbour slot;
- ("repeat", None): the repeat-purchase features of every candidate set to zero (= never bought);
- ("popularity", None): the popularity features set to zero;
- ("query", None): query_mask = 0 (transformer only);
- ("query_embedding", emb): the query replaced by another embedding, e.g. the query with one term removed
  (`libs.text.drop_term` + text_encoder), which is how query-term evidence is measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from libs.model_io import (
    HIST_IDS,
    HIST_MASK,
    POP_FEATS,
    QUERY_EMB,
    QUERY_MASK,
    REPEAT_FEATS,
    USER_NBR_IDS,
    USER_NBR_MASK,
)

KINDS = ("history_item", "history_position", "user_neighbour", "repeat", "popularity", "query", "query_embedding")


@dataclass(frozen=True)
class Evidence:
    kind: str
    value: Any = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown evidence kind {self.kind!r}; one of {KINDS}")


def mask_one(inputs: dict[str, np.ndarray], evidence: Evidence) -> dict[str, np.ndarray]:
    """A copy of a single-scenario input dict (B = 1, either ranker) with `evidence` masked.

    Evidence that a model does not read (e.g. "query" for gnn_ranker) leaves its inputs unchanged.
    """
    out = {k: v.copy() for k, v in inputs.items()}
    kind, value = evidence.kind, evidence.value
    if kind == "history_item":
        for ids, mask in ((HIST_IDS, HIST_MASK), (USER_NBR_IDS, USER_NBR_MASK)):
            if ids in out:
                out[mask][out[ids] == int(value) + 1] = 0.0
    elif kind == "history_position" and HIST_MASK in out:
        out[HIST_MASK][:, int(value)] = 0.0
    elif kind == "user_neighbour" and USER_NBR_MASK in out:
        out[USER_NBR_MASK][:, int(value)] = 0.0
    elif kind == "repeat":
        out[REPEAT_FEATS][:] = 0.0
    elif kind == "popularity":
        out[POP_FEATS][:] = 0.0
    elif kind == "query" and QUERY_MASK in out:
        out[QUERY_MASK][:] = 0.0
    elif kind == "query_embedding" and QUERY_EMB in out:
        out[QUERY_EMB][:] = np.asarray(value, np.float32).reshape(1, -1)
    return out


def masked_scenarios(inputs: dict[str, np.ndarray], evidence: Sequence[Evidence]) -> dict[str, np.ndarray]:
    """Batch [1 + len(evidence), ...]: row 0 = `inputs` as they are, row i = evidence[i - 1] masked."""
    if next(iter(inputs.values())).shape[0] != 1:
        raise ValueError("masked_scenarios takes a single scenario (batch axis 1)")
    rows = [inputs] + [mask_one(inputs, e) for e in evidence]
    return {k: np.concatenate([r[k] for r in rows], axis=0) for k in inputs}


def effects(scores: np.ndarray) -> np.ndarray:
    """[len(evidence), C]: score drop of each candidate when each evidence is masked (positive = it helped)."""
    return scores[:1] - scores[1:]
