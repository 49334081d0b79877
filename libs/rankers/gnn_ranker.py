"""gnn_ranker: inductive PinSage-style GNN over the purchase graph (the customer's item neighbours, each candidate's
co-purchase neighbours), repeat-purchase and popularity features (PyTorch module: training.models.rankers)."""

from __future__ import annotations

import numpy as np

from libs.features import FeatureStore, UserContext, cand_ids, pop_features_of, repeat_features, user_neighbours
from libs.model_io import (
    CAND_EMB,
    CAND_IDS,
    CAND_NBR_ATTENTION,
    CAND_NBR_IDS,
    CAND_NBR_MASK,
    CAND_NBR_WEIGHT,
    EDGE_FEATURES,
    ITEM_NEIGHBOURS,
    MAX_SCENARIOS,
    POP_FEATS,
    POP_FEATURES,
    REPEAT_FEATS,
    REPEAT_FEATURES,
    SCORE,
    TEXT_DIM,
    USER_ATTENTION,
    USER_NBR_EMB,
    USER_NBR_FEATS,
    USER_NBR_IDS,
    USER_NBR_MASK,
    USER_NEIGHBOURS,
    ModelSpec,
    Tensor,
)
from libs.rankers.registry import Ranker, register

NAME = "gnn_ranker"

SPEC = ModelSpec(
    name=NAME,
    inputs=(
        Tensor(USER_NBR_IDS, "int64", (USER_NEIGHBOURS,)),
        Tensor(USER_NBR_EMB, "float32", (USER_NEIGHBOURS, TEXT_DIM)),
        Tensor(USER_NBR_FEATS, "float32", (USER_NEIGHBOURS, EDGE_FEATURES)),
        Tensor(USER_NBR_MASK, "float32", (USER_NEIGHBOURS,)),
        Tensor(CAND_IDS, "int64", (-1,)),
        Tensor(CAND_EMB, "float32", (-1, TEXT_DIM)),
        Tensor(CAND_NBR_IDS, "int64", (-1, ITEM_NEIGHBOURS)),
        Tensor(CAND_NBR_WEIGHT, "float32", (-1, ITEM_NEIGHBOURS)),
        Tensor(CAND_NBR_MASK, "float32", (-1, ITEM_NEIGHBOURS)),
        Tensor(REPEAT_FEATS, "float32", (-1, REPEAT_FEATURES)),
        Tensor(POP_FEATS, "float32", (-1, POP_FEATURES)),
    ),
    outputs=(
        Tensor(SCORE, "float32", (-1,)),
        Tensor(USER_ATTENTION, "float32", (-1, USER_NEIGHBOURS)),
        Tensor(CAND_NBR_ATTENTION, "float32", (-1, ITEM_NEIGHBOURS)),
    ),
    max_batch_size=MAX_SCENARIOS,
)


def gnn_inputs(
    store: FeatureStore,
    ctx: UserContext,
    cand_idx: np.ndarray,
    query_emb: np.ndarray | None = None,
    new_cand_emb: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Inputs for one scenario (B = 1): the user's sampled item neighbours with edge features, the candidates with
    their co-purchase neighbours, repeat and popularity features (the query is not read). New products
    (item_idx -1) have no neighbours yet; their title embedding alone represents them."""
    cand_idx = np.asarray(cand_idx, np.int64)
    u_ids, u_feats, u_mask = user_neighbours(ctx)
    u_emb = store.item_emb[np.clip(u_ids - 1, 0, None)] * u_mask[:, None]
    known = cand_idx >= 0
    c = np.clip(cand_idx, 0, None)
    n_ids = np.where(known[:, None], store.nbr_ids[c], 0)
    n_w = np.where(known[:, None], store.nbr_weight[c], 0.0).astype(np.float32)
    return {
        USER_NBR_IDS: u_ids[None],
        USER_NBR_EMB: u_emb[None].astype(np.float32),
        USER_NBR_FEATS: u_feats[None],
        USER_NBR_MASK: u_mask[None],
        CAND_IDS: cand_ids(cand_idx),
        CAND_EMB: store.candidate_embeddings(cand_idx, new_cand_emb)[None],
        CAND_NBR_IDS: n_ids[None],
        CAND_NBR_WEIGHT: n_w[None],
        CAND_NBR_MASK: (n_ids > 0).astype(np.float32)[None],
        REPEAT_FEATS: repeat_features(ctx, cand_idx, store.item_cycle)[None],
        POP_FEATS: pop_features_of(store, cand_idx, ctx)[None],
    }


RANKER = register(
    Ranker(
        spec=SPEC,
        inputs=gnn_inputs,
        module="training.models.rankers:GnnRanker",
        history_slots=((USER_NBR_IDS, USER_NBR_MASK),),
        gathered=((USER_NBR_EMB, USER_NBR_IDS), (CAND_EMB, CAND_IDS)),
        description="inductive PinSage-style GNN (co-purchase + user neighbours) + repeat/popularity features",
    )
)
