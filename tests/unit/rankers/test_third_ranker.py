"""Adding a ranker = one module + one registry line: a tiny third ranker, registered only in this test, is trained,
exported with parity, gets Triton configs, is served by ranking, fused, and explained - with no other change."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from libs import domain as d
from libs.features import history_features, pop_features_of
from libs.fusion import Fusion
from libs.model_io import CAND_EMB, MAX_HISTORY, POP_FEATS, POP_FEATURES, SCORE, TEXT_DIM, ModelSpec, Tensor
from libs.rankers import Ranker, names, register, specs, unregister, variants
from libs.explain.core import ExplanationCore
from libs.ranking import RankingCore
from tests.unit.features import synthetic
from training.export.onnx_export import export_model
from training.export.triton_configs import cpu_config, gpu_config
from training.models.rankers import new_module, serving_form, wire_form
from training.train.data import build_examples
from training.train.trainer import TrainConfig, score_catalogue, train_ranker
from training.train.pipeline import fit_fusion, weight_grid

NAME = "tiny_ranker"
IDS, MASK = "tiny_hist_ids", "tiny_hist_mask"


class Tiny(nn.Module):
    """score = <candidate title, mean of the history's learned item vectors> + w . popularity."""

    @classmethod
    def from_config(cls, config: dict, item_emb: np.ndarray | None = None) -> Tiny:
        return cls(**config)

    def __init__(self, n_items: int, dim: int = 8, dropout: float = 0.0) -> None:
        super().__init__()
        self.config = dict(n_items=n_items, dim=dim, dropout=dropout)
        self.items = nn.Embedding(n_items + 1, TEXT_DIM)
        self.pop = nn.Linear(POP_FEATURES, 1)

    def forward(self, hist_ids, hist_mask, cand_emb, pop_feats):
        h = (self.items(hist_ids) * hist_mask[..., None]).sum(1) / hist_mask.sum(-1, keepdim=True).clamp(min=1.0)
        return ((cand_emb * h[:, None, :]).sum(-1) + self.pop(pop_feats).squeeze(-1),)


def tiny_inputs(store, ctx, cand_idx, query_emb=None, new_cand_emb=None):
    ids, _, mask = history_features(ctx)
    cand_idx = np.asarray(cand_idx, np.int64)
    return {
        IDS: ids[None],
        MASK: mask[None],
        CAND_EMB: store.candidate_embeddings(cand_idx, new_cand_emb)[None],
        POP_FEATS: pop_features_of(store, cand_idx)[None],
    }


SPEC = ModelSpec(
    NAME,
    inputs=(
        Tensor(IDS, "int64", (MAX_HISTORY,)),
        Tensor(MASK, "float32", (MAX_HISTORY,)),
        Tensor(CAND_EMB, "float32", (-1, TEXT_DIM)),
        Tensor(POP_FEATS, "float32", (-1, POP_FEATURES)),
    ),
    outputs=(Tensor(SCORE, "float32", (-1,)),),
    max_batch_size=64,
)
TINY = Ranker(
    spec=SPEC,
    inputs=tiny_inputs,
    module=f"{__name__}:Tiny",
    history_slots=((IDS, MASK),),
    description="test-only ranker",
)


@pytest.fixture
def tiny():
    register(TINY)
    yield TINY
    unregister(NAME)
    assert NAME not in names()


def test_registered_ranker_joins_every_stage(tiny, tmp_path):
    assert NAME in specs() and variants()["tiny_only"] == (NAME,) and NAME in variants()["fused"]

    # Training: examples and batches come from the registry's input builder.
    purchases, emb = synthetic.purchases(n_users=40), synthetic.item_embeddings()
    examples = build_examples(purchases, None, emb, synthetic.NOW, n_windows=3)
    model, info = train_ranker(
        NAME, examples, synthetic.N_ITEMS, emb, TrainConfig(epochs=1, dim=8, batch_size=8), progress=False
    )
    assert np.isfinite(info["loss_per_epoch"]).all()
    store = synthetic.store()
    assert np.isfinite(score_catalogue(NAME, model, store, ["42"])).all()

    # Export with parity, and Triton configs for both model configurations.
    ctx = store.user_context("42")
    report = export_model(model.eval(), SPEC, [tiny_inputs(store, ctx, np.arange(5))], tmp_path, tolerance=1e-4)
    assert max(report.max_abs_diff.values()) <= 1e-4 and (tmp_path / NAME / "1" / "model.onnx").is_file()
    assert gpu_config(SPEC).name == NAME and cpu_config(SPEC).name == NAME

    # Fusion fitting over three rankers: a grid over the simplex.
    assert len(weight_grid(["a", "b", "c"])) == 231
    users = ["42", "1000"]
    scores = {m: score_catalogue(m, model if m == NAME else _torch(m), store, users) for m in names()}
    truth = sp.csr_matrix(np.eye(2, synthetic.N_ITEMS, 3, dtype=bool))
    fitted = fit_fusion(scores, next(iter(scores.values())) > -1e5, truth)
    assert set(fitted["weights"]) == set(names()) and sum(fitted["weights"].values()) == pytest.approx(1.0)


async def test_ranking_and_explanation_serve_the_new_ranker(tiny):
    torch.manual_seed(0)
    store = synthetic.store()
    # What Triton serves: each ranker's exported (wire) form, reading ids where it holds the title table.
    modules = {
        m: wire_form(serving_form((Tiny(synthetic.N_ITEMS) if m == NAME else _torch(m)).eval()), m, store.item_emb)
        for m in names()
    }

    async def infer(model, inputs, outputs, timeout):
        with torch.no_grad():
            out = modules[model](*[torch.from_numpy(inputs[n]) for n in specs()[model].input_names])
        return {SCORE: out[0].numpy()}

    async def version(model):
        return "1"

    fusion = Fusion({m: 1.0 / len(modules) for m in modules})
    titles = [f"ITEM {i}" for i in range(synthetic.N_ITEMS)]
    products = [str(p) for p in store.item_index[:12]]
    ranked = await RankingCore(store, titles, fusion, infer, None, version).rank(
        "42", "", products, 5, "fused", 0.0, [], 5.0
    )
    assert {v.name for v in ranked.versions} == set(names())
    assert all(NAME in item.model_scores for item in ranked.items)
    only = await RankingCore(store, titles, fusion, infer, None, version).rank(
        "42", "", products, 5, "tiny_only", 0.0, [], 5.0
    )
    assert set(only.items[0].model_scores) == {NAME, "fused"}

    page = [i.product_id for i in ranked.items]
    out = await ExplanationCore(store, titles, fusion, infer, None).explain("42", "", page, "fused", [], 5.0)
    for item, ex in zip(ranked.items, out.explanations):
        assert ex.score == pytest.approx(item.score, abs=1e-6)
        assert any(e.kind in (d.EvidenceKind.PAST_PURCHASE, d.EvidenceKind.CO_PURCHASE_NEIGHBOUR) for e in ex.evidence)


def _torch(name: str) -> nn.Module:
    torch.manual_seed(1)
    return new_module(
        name, {"n_items": synthetic.N_ITEMS, "dim": 8, "dropout": 0.0}, synthetic.item_embeddings()
    ).eval()
