"""Small helpers that shape features into the models' input tensors (libs.model_io), batch axis = 1 scenario."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from libs.model_io import TEXT_DIM


def query_inputs(query_emb: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if query_emb is None:
        return np.zeros((1, TEXT_DIM), np.float32), np.zeros((1, 1), np.float32)
    return np.asarray(query_emb, np.float32).reshape(1, TEXT_DIM), np.ones((1, 1), np.float32)


def cand_ids(cand_idx: np.ndarray) -> np.ndarray:
    cand_idx = np.asarray(cand_idx, np.int64)
    return np.where(cand_idx >= 0, cand_idx + 1, 0)[None]


def stack(batches: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate single-scenario input dicts along the batch axis (same candidate count required)."""
    return {k: np.concatenate([b[k] for b in batches], axis=0) for k in batches[0]}
