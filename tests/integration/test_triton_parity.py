"""The real tritonserver (CPU configs: Python backend + ONNX Runtime) returns the in-process PyTorch outputs.

A model repository is assembled in a temporary folder from the committed, generated configs
(`triton_models/<name>/config.pbtxt` + `configs/cpu.pbtxt` + `1/model.py`) and freshly exported ONNX files:
the pretrained text_encoder, and the two rankers - the trained checkpoints when `python -m training.train` has
run (with the real dataset's features), otherwise small randomly initialised rankers on synthetic features. Requests
go over Triton's gRPC API in the rankers' wire format (ids where the served model holds the title table, libs/rankers/
wire.py) and are compared with the trained PyTorch modules on their embedding inputs, including a multi-scenario
explanation batch, a product newer than the model, and concurrent requests that Triton's dynamic batcher may merge.
"""

from __future__ import annotations

import importlib.util
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from libs.explain import Mask, masked_scenarios
from libs.features import stack
from libs.model_io import TEXT_ENCODER, TEXT_ENCODER_SPEC
from libs.rankers import get as ranker
from libs.rankers import specs
from libs.rankers.gnn_ranker import NAME as GNN_RANKER
from libs.rankers.transformer_ranker import NAME as TRANSFORMER_RANKER
from libs.text import tokenize
from training.export.onnx_export import export_model, torch_outputs
from training.models.rankers import serving_form, wire_form

grpcclient = pytest.importorskip("tritonclient.grpc")

REPO_ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-4


def _ensure_launcher_finds_pytriton() -> None:
    """`import pytriton` pulls pytriton's own client deps (gevent, ...) that the venv need not have; the launcher
    only needs the package folder, so fall back to locating it without importing it."""
    import libs.triton.launcher as launcher

    try:
        launcher._pytriton_dir()
    except launcher.TritonNotFoundError:
        spec = importlib.util.find_spec("pytriton")
        if spec is None or not spec.submodule_search_locations:
            pytest.skip("nvidia-pytriton (tritonserver binary) is not installed")
        folder = Path(list(spec.submodule_search_locations)[0]) / "tritonserver"
        launcher._pytriton_dir = lambda: folder


def _trained_or_synthetic():
    """(rankers, store) - trained checkpoints + real features when available, else random models + synthetic."""
    try:
        from libs.catalog.store import load_dataset
        from libs.features import FeatureStore
        from training.train.checkpoints import latest_checkpoint, load_checkpoint

        models_dir = REPO_ROOT / "artifacts" / "models"
        ds = load_dataset()
        emb = np.load(models_dir / "item_embeddings.npy")
        paths = {
            n: latest_checkpoint(models_dir, n, ds.purchases["ts"].max()) for n in (TRANSFORMER_RANKER, GNN_RANKER)
        }
        if all(paths.values()) and len(emb) == ds.n_items:
            rankers = {n: load_checkpoint(p, emb)[0] for n, p in paths.items()}
            store = FeatureStore.build(ds.purchases, emb, ds.purchases["ts"].max(), ds.guest_sales)
            return rankers, store, "trained"
    except Exception:
        pass
    from tests.unit.features import synthetic
    from training.models.rankers import GnnRanker, TransformerRanker

    torch.manual_seed(0)
    rankers = {
        TRANSFORMER_RANKER: TransformerRanker(synthetic.N_ITEMS, dim=32).eval(),
        GNN_RANKER: GnnRanker(synthetic.N_ITEMS, torch.from_numpy(synthetic.item_embeddings()), dim=32).eval(),
    }
    return rankers, synthetic.store(), "synthetic"


def _ranker_batches(name: str, store, query_emb: np.ndarray) -> list[dict[str, np.ndarray]]:
    users = sorted(store.users, key=lambda u: -len(store.users[u]))[:3]
    ctxs = [store.user_context(u) for u in users]
    r = ranker(name)
    cands = np.arange(min(store.n_items, 200))
    ranking = r.inputs(store, ctxs[0], cands)
    several = stack([r.inputs(store, c, cands[:17]) for c in ctxs])
    one = r.inputs(store, ctxs[1], cands[:5], query_emb if r.reads_query else None)
    masks = [Mask("history_item", int(ctxs[1].items[-1])), Mask("repeat"), Mask("popularity"), Mask("query")]
    explain = masked_scenarios(one, masks + [Mask("all", tuple(masks))], r.history_slots)
    # A product newer than the model (item_idx -1): its title embedding is the one that travels (wire format).
    new = r.inputs(
        store, ctxs[2], np.array([-1, *cands[:3]]), query_emb if r.reads_query else None, np.tile(query_emb, (4, 1))
    )
    return [ranking, several, explain, new]


def _spec(name: str):
    return TEXT_ENCODER_SPEC if name == TEXT_ENCODER else ranker(name).spec


def _wire(name: str, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return batch if name == TEXT_ENCODER else ranker(name).to_wire(batch)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from libs.triton.launcher import TritonServer
    from training.models.text_encoder import load_text_encoder

    _ensure_launcher_finds_pytriton()
    repo = tmp_path_factory.mktemp("triton_repo")
    for name in specs():
        src = REPO_ROOT / "triton_models" / name
        (repo / name / "configs").mkdir(parents=True)
        shutil.copy(src / "config.pbtxt", repo / name / "config.pbtxt")
        shutil.copy(src / "configs" / "cpu.pbtxt", repo / name / "configs" / "cpu.pbtxt")
    encoder = load_text_encoder()
    rankers, store, kind = _trained_or_synthetic()
    q = tokenize(["heart holder"])
    with torch.no_grad():
        query_emb = encoder(torch.from_numpy(q["input_ids"]), torch.from_numpy(q["attention_mask"]))[0].numpy()
    cases = {
        TEXT_ENCODER: (
            encoder,
            [tokenize(["WHITE HANGING HEART T-LIGHT HOLDER", "red", "set of 3 cake tins"]), tokenize(["mug"])],
        )
    }
    for name, module in rankers.items():
        cases[name] = (module, _ranker_batches(name, store, query_emb))
    parity = {}
    for name, (module, batches) in cases.items():
        # Exported as export_all does: a ranker's wire form (ids in, title table held), checked against the module.
        exported = module if name == TEXT_ENCODER else wire_form(serving_form(module), name, store.item_emb)
        parity[name] = export_model(
            exported,
            _spec(name),
            batches,
            repo,
            tolerance=TOLERANCE,
            reference=module,
            served=specs()[name],
            to_wire=lambda b, n=name: _wire(n, b),
        )
        assert (repo / name / "1" / "model.py").read_text() == (
            REPO_ROOT / "triton_models" / name / "1" / "model.py"
        ).read_text()
    server = TritonServer(
        model_repository=repo, config_name="cpu", log_path=repo / "triton.log", versions={name: "1" for name in specs()}
    )  # what was exported above, whatever bundle is served
    server.start()
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        yield client, cases, parity, kind
    finally:
        client.close()
        server.stop()
        assert server.process is None or server.process.poll() is not None, "tritonserver still running"


def _infer(client, name: str, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
    spec = specs()[name]
    batch = _wire(name, batch)
    inputs = []
    for t in spec.inputs:
        x = grpcclient.InferInput(t.name, list(batch[t.name].shape), t.client_dtype)
        x.set_data_from_numpy(np.ascontiguousarray(batch[t.name], dtype=t.np_dtype))
        inputs.append(x)
    outputs = [grpcclient.InferRequestedOutput(n) for n in spec.output_names]
    result = client.infer(name, inputs, outputs=outputs)
    return [result.as_numpy(n) for n in spec.output_names]


@pytest.mark.parametrize("name", [TEXT_ENCODER, TRANSFORMER_RANKER, GNN_RANKER])
def test_triton_grpc_equals_pytorch(served, name):
    client, cases, parity, kind = served
    module, batches = cases[name]
    assert parity[name].ok
    for batch in batches:
        want = torch_outputs(module, _spec(name), batch)
        got = _infer(client, name, batch)
        for out_name, g, w in zip(specs()[name].output_names, got, want):
            assert g.shape == w.shape, out_name
            diff = float(np.abs(g - w).max())
            assert diff <= TOLERANCE, f"{name}.{out_name} ({kind} weights): Triton vs PyTorch max abs diff {diff}"


def test_concurrent_requests_batched_by_triton_stay_exact(served):
    client, cases, _, _ = served
    module, batches = cases[GNN_RANKER]
    explain = batches[2]
    rows = [{k: v[i : i + 1] for k, v in explain.items()} for i in range(explain["cand_ids"].shape[0])]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda r: _infer(client, GNN_RANKER, r)[0], rows))
    want = torch_outputs(module, _spec(GNN_RANKER), explain)[0]
    assert float(np.abs(np.concatenate(got) - want).max()) <= TOLERANCE
