"""The contract between training/export, the Triton model repository and the services.

This module holds every tensor name, the fixed sizes the feature assembly uses (history length, neighbour counts,
feature widths), the text encoder's spec and the side files training writes. Each ranker's spec (which of these
tensors it reads and writes) is declared by its module in libs/rankers/, the registry everything else iterates.

Axes: B = scenarios (one user context each; explanation calls put masked variants of the same user on this axis),
C = candidates per scenario, L = history length (fixed, left-padded), T = tokens.

Item ids in model inputs are `item_idx + 1` (dense catalogue index shifted by one); 0 means "no id": padding, or
a product the trained model has never seen (its title embedding still carries it, so new products are scored
without retraining).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ---------------------------------------------------------------------------------------------- sizes
TEXT_DIM = 384  # all-MiniLM-L6-v2 sentence embedding
TEXT_MAX_TOKENS = 32  # titles are short; queries are cut to this many word pieces
MAX_HISTORY = 50  # L: most recent purchases (invoice lines) the transformer reads
USER_NEIGHBOURS = 32  # Ku: distinct items a user is linked to in the purchase graph (GNN user side)
ITEM_NEIGHBOURS = 10  # Kc: co-purchase neighbours of a candidate (item-user-item paths, PinSage-style)
HIST_FEATURES = 4  # per history position, see libs.features.HIST_FEATURE_NAMES
EDGE_FEATURES = 4  # per user->item edge, see libs.features.EDGE_FEATURE_NAMES
REPEAT_FEATURES = 11  # per (user, candidate), see libs.features.REPEAT_FEATURE_NAMES
POP_FEATURES = 7  # per candidate, see libs.features.POP_FEATURE_NAMES

# Serving shapes the optimisation profiles must cover (max B, max C).
MAX_SCENARIOS = 64  # explanation calls: 1 full context + one masked variant per evidence piece
MAX_CANDIDATES = 1000  # RankCandidatesRequest allows up to 1000 product ids
MAX_TEXT_BATCH = 64


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str  # numpy dtype name: "float32", "int64"
    shape: tuple[int, ...]  # without the batch axis; -1 = dynamic

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def client_dtype(self) -> str:
        return {"float32": "FP32", "int64": "INT64", "float16": "FP16"}[self.dtype]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    max_batch_size: int  # B axis (Triton's batch dimension); the TensorRT profiles cover 1..max_batch_size
    dynamic_axis: str = "candidates"  # name of the -1 axis (C for rankers, T for the text encoder)
    max_dynamic: int = MAX_CANDIDATES  # largest size of that axis the services send
    opt_dynamic: int = 200  # typical size (TensorRT profile "opt")

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def input(self, name: str) -> Tensor:
        return next(t for t in self.inputs if t.name == name)

    def output(self, name: str) -> Tensor:
        return next(t for t in self.outputs if t.name == name)


# ---------------------------------------------------------------------------------------------- text_encoder
TEXT_ENCODER = "text_encoder"
TE_INPUT_IDS = "input_ids"
TE_ATTENTION_MASK = "attention_mask"
TE_EMBEDDING = "sentence_embedding"  # "embedding" collides with an internal name in the dynamo exporter

TEXT_ENCODER_SPEC = ModelSpec(
    name=TEXT_ENCODER,
    inputs=(Tensor(TE_INPUT_IDS, "int64", (-1,)), Tensor(TE_ATTENTION_MASK, "int64", (-1,))),
    outputs=(Tensor(TE_EMBEDDING, "float32", (TEXT_DIM,)),),
    max_batch_size=MAX_TEXT_BATCH,
    dynamic_axis="tokens",
    max_dynamic=TEXT_MAX_TOKENS,
    opt_dynamic=16,
)

# ---------------------------------------------------------------------------------------------- shared ranker inputs
CAND_IDS = "cand_ids"  # [B, C] int64 item_idx+1 (0 = unknown product)
CAND_EMB = "cand_emb"  # [B, C, 384] float32 title embeddings of the candidates
# Served models hold the catalogue's title table and gather embeddings by id (libs/rankers/wire.py); only the
# embeddings of candidates they cannot look up (id 0: products newer than the model) travel, in this tensor:
NEW_CAND_EMB = "new_cand_emb"  # [B, C, 384] rows of id-0 candidates (others 0), or [B, 1, 384] zeros: none new
# [B, C, 11] float32 user x candidate re-purchase features (incl. cycle); all-zero = never bought
REPEAT_FEATS = "repeat_feats"
# [B, C, 7] float32 candidate popularity (recent, season, similar customers) / repeat-propensity features;
# all-zero = masked
POP_FEATS = "pop_feats"
QUERY_EMB = "query_emb"  # [B, 384] float32 text_encoder embedding of the query (zeros when absent)
QUERY_MASK = "query_mask"  # [B, 1] float32 1 = query present, 0 = no query / masked
SCORE = "score"  # [B, C] float32 ranking score (logit; higher = better)

# ---------------------------------------------------------------------------------------------- transformer_ranker
# Tensors of transformer_ranker (spec: libs/rankers/transformer_ranker.py)
HIST_IDS = "hist_ids"  # [B, L] int64 item_idx+1, oldest..newest, left-padded with 0
HIST_EMB = "hist_emb"  # [B, L, 384] float32 title embeddings of the history items
HIST_FEATS = "hist_feats"  # [B, L, 4] float32 time / basket features of each history position
HIST_MASK = "hist_mask"  # [B, L] float32 1 = real purchase, 0 = padding or masked evidence
HIST_ATTENTION = "hist_attention"  # [B, C, L] float32 target attention of each candidate over the history

# ---------------------------------------------------------------------------------------------- gnn_ranker
# Tensors of gnn_ranker (spec: libs/rankers/gnn_ranker.py)
USER_NBR_IDS = "user_nbr_ids"  # [B, Ku] int64 item_idx+1 of the user's item neighbours (0 = pad)
USER_NBR_EMB = "user_nbr_emb"  # [B, Ku, 384] float32 their title embeddings
USER_NBR_FEATS = "user_nbr_feats"  # [B, Ku, 4] float32 edge features (how often / how recently)
USER_NBR_MASK = "user_nbr_mask"  # [B, Ku] float32 1 = neighbour present, 0 = pad or masked evidence
CAND_NBR_IDS = "cand_nbr_ids"  # [B, C, Kc] int64 item_idx+1 of each candidate's co-purchase neighbours
CAND_NBR_WEIGHT = "cand_nbr_weight"  # [B, C, Kc] float32 log1p(co-purchase count); 0 = pad
CAND_NBR_MASK = "cand_nbr_mask"  # [B, C, Kc] float32 1 = neighbour present
USER_ATTENTION = "user_attention"  # [B, C, Ku] float32 attention of each candidate over the user's neighbours
CAND_NBR_ATTENTION = "cand_nbr_attention"  # [B, C, Kc] float32 attention over the candidate's neighbours

# Side files written by `python -m training.train` (relative to the artifacts models dir).
ITEM_EMBEDDINGS_FILE = "item_embeddings.npy"  # [n_items, 384] float32, row = item_idx
FUSION_FILE = "fusion.json"  # libs.fusion.Fusion: {"weights", "centre", "scale"} per ranker and prior + how fitted
