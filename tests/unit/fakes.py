"""A tiny feature store and a numpy stand-in for the rankers, for unit tests of the orchestration logic."""

from __future__ import annotations

import numpy as np
import pandas as pd

from libs.errors import UnavailableError
from libs.features import FeatureStore
from libs.fusion import Fusion
from libs.model_io import (
    CAND_EMB,
    HIST_EMB,
    HIST_MASK,
    NEW_CAND_EMB,
    POP_FEATS,
    QUERY_EMB,
    QUERY_MASK,
    REPEAT_FEATS,
    SCORE,
    USER_NBR_EMB,
    USER_NBR_MASK,
)
from libs.rankers import get as ranker
from libs.rankers.gnn_ranker import NAME as GNN_RANKER
from libs.rankers.wire import title_table
from libs.rankers.transformer_ranker import NAME as TRANSFORMER_RANKER

PRODUCTS = ["A", "B", "C", "D", "E", "F"]
TITLES = ["RED LANTERN", "BLUE LANTERN", "TEA CUP", "TEA POT", "GARDEN SIGN", "DOOR MAT"]


def store() -> FeatureStore:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(PRODUCTS), 384)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    t0 = pd.Timestamp("2011-10-01")
    purchases = pd.DataFrame(
        {
            "user_id": ["1", "1", "1", "2", "2", "3"],
            "item_idx": [0, 2, 0, 2, 3, 4],
            "invoice_no": ["i1", "i1", "i2", "i3", "i3", "i4"],
            "ts": [t0, t0, t0 + pd.Timedelta(days=10), t0, t0, t0],
        }
    )
    return FeatureStore.build(purchases, emb, t0 + pd.Timedelta(days=20), None, PRODUCTS)


def from_wire(model: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What the served form does first (training.models.rankers.WireForm), in numpy: title embeddings from ids.
    Requests must be in wire form, as Triton's models read them."""
    r = ranker(model)
    assert not any(emb in inputs for emb, _ in r.gathered), f"{model}: embeddings sent, not ids"
    table = title_table(store().item_emb)
    out = dict(inputs)
    for emb, ids in r.gathered:
        out[emb] = table[inputs[ids]] + (inputs[NEW_CAND_EMB] if emb == CAND_EMB else 0.0)
    return out


class FakeRankers:
    """score = cand . (mean history) + sum(repeat) + 0.1 sum(pop) (+ cand . query): nearly linear, so masking
    effects are easy to predict (`additive=True` sums the history instead: then pieces of evidence do not interact).
    `down` lists models that answer UNAVAILABLE; `calls` counts calls per model."""

    def __init__(self, down: tuple[str, ...] = (), additive: bool = False) -> None:
        self.down = down
        self.additive = additive
        self.calls: dict[str, int] = {}
        self.batch_sizes: list[int] = []

    async def infer(self, model, inputs, outputs, timeout):
        self.calls[model] = self.calls.get(model, 0) + 1
        self.batch_sizes.append(next(iter(inputs.values())).shape[0])
        if model in self.down:
            raise UnavailableError(f"{model}: UNAVAILABLE")
        inputs = from_wire(model, inputs)
        if model == TRANSFORMER_RANKER:
            emb, mask = inputs[HIST_EMB], inputs[HIST_MASK]
        else:
            emb, mask = inputs[USER_NBR_EMB], inputs[USER_NBR_MASK]
        profile = (emb * mask[..., None]).sum(1)
        if not self.additive:
            profile /= np.maximum(mask.sum(1, keepdims=True), 1)
        score = np.einsum("bcd,bd->bc", inputs[CAND_EMB], profile)
        score += inputs[REPEAT_FEATS].sum(-1) + 0.1 * inputs[POP_FEATS].sum(-1)
        if QUERY_EMB in inputs:
            score += np.einsum("bcd,bd->bc", inputs[CAND_EMB], inputs[QUERY_EMB]) * inputs[QUERY_MASK]
        return {SCORE: score.astype(np.float32)}


async def encode(texts, timeout):
    """Stand-in for text_encoder: the mean of the titles' embeddings of products whose title shares a word."""
    s = store()
    out = []
    for text in texts:
        words = set(text.upper().split())
        hits = [i for i, t in enumerate(TITLES) if words & set(t.split())]
        v = s.item_emb[hits].mean(0) if hits else np.zeros(384, np.float32)
        out.append(v)
    return np.stack(out).astype(np.float32)


FUSION = Fusion(
    {GNN_RANKER: 0.5, TRANSFORMER_RANKER: 0.5},
    {GNN_RANKER: 0.1, TRANSFORMER_RANKER: -0.2},
    {GNN_RANKER: 0.8, TRANSFORMER_RANKER: 1.3},
    explore_span=4.0,
)
