"""transformer_ranker: SASRec-like encoder over the customer's time-ordered purchases, target attention from each
candidate (and the query), repeat-purchase and popularity features (PyTorch module: training.models.rankers)."""

from __future__ import annotations

import numpy as np

from libs.features import (
    FeatureStore,
    UserContext,
    cand_ids,
    history_features,
    pop_features_of,
    query_inputs,
    repeat_features,
)
from libs.model_io import (
    CAND_EMB,
    CAND_IDS,
    HIST_ATTENTION,
    HIST_EMB,
    HIST_FEATS,
    HIST_FEATURES,
    HIST_IDS,
    HIST_MASK,
    MAX_HISTORY,
    MAX_SCENARIOS,
    POP_FEATS,
    POP_FEATURES,
    QUERY_EMB,
    QUERY_MASK,
    REPEAT_FEATS,
    REPEAT_FEATURES,
    SCORE,
    TEXT_DIM,
    ModelSpec,
    Tensor,
)
from libs.rankers.registry import Ranker, register

NAME = "transformer_ranker"

SPEC = ModelSpec(
    name=NAME,
    inputs=(
        Tensor(HIST_IDS, "int64", (MAX_HISTORY,)),
        Tensor(HIST_EMB, "float32", (MAX_HISTORY, TEXT_DIM)),
        Tensor(HIST_FEATS, "float32", (MAX_HISTORY, HIST_FEATURES)),
        Tensor(HIST_MASK, "float32", (MAX_HISTORY,)),
        Tensor(CAND_IDS, "int64", (-1,)),
        Tensor(CAND_EMB, "float32", (-1, TEXT_DIM)),
        Tensor(REPEAT_FEATS, "float32", (-1, REPEAT_FEATURES)),
        Tensor(POP_FEATS, "float32", (-1, POP_FEATURES)),
        Tensor(QUERY_EMB, "float32", (TEXT_DIM,)),
        Tensor(QUERY_MASK, "float32", (1,)),
    ),
    outputs=(
        Tensor(SCORE, "float32", (-1,)),
        Tensor(HIST_ATTENTION, "float32", (-1, MAX_HISTORY)),
    ),
    max_batch_size=MAX_SCENARIOS,
)


def transformer_inputs(
    store: FeatureStore,
    ctx: UserContext,
    cand_idx: np.ndarray,
    query_emb: np.ndarray | None = None,
    new_cand_emb: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Inputs for one scenario (B = 1): history, candidates (item_idx; -1 = new product whose embedding is the same
    row of new_cand_emb), repeat and popularity features, optional query embedding."""
    cand_idx = np.asarray(cand_idx, np.int64)
    h_ids, h_feats, h_mask = history_features(ctx)
    h_emb = store.item_emb[np.clip(h_ids - 1, 0, None)] * h_mask[:, None]
    q_emb, q_mask = query_inputs(query_emb)
    return {
        HIST_IDS: h_ids[None],
        HIST_EMB: h_emb[None].astype(np.float32),
        HIST_FEATS: h_feats[None],
        HIST_MASK: h_mask[None],
        CAND_IDS: cand_ids(cand_idx),
        CAND_EMB: store.candidate_embeddings(cand_idx, new_cand_emb)[None],
        REPEAT_FEATS: repeat_features(ctx, cand_idx, store.item_cycle)[None],
        POP_FEATS: pop_features_of(store, cand_idx, ctx)[None],
        QUERY_EMB: q_emb,
        QUERY_MASK: q_mask,
    }


RANKER = register(
    Ranker(
        spec=SPEC,
        inputs=transformer_inputs,
        module="training.models.rankers:TransformerRanker",
        history_slots=((HIST_IDS, HIST_MASK),),
        gathered=((HIST_EMB, HIST_IDS), (CAND_EMB, CAND_IDS)),
        reads_query=True,
        description="SASRec-like transformer + target attention + repeat/popularity features (candidate pool)",
    )
)
