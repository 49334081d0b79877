"""Export text_encoder, transformer_ranker and gnn_ranker to the Triton repository with parity checks.

Real batches only: tokenised catalogue titles and title-derived queries for the encoder; for the rankers, real
customers' contexts scored on their candidate pools (the ranking call), a masked-scenario batch (the explanation
call) and a batch with a query. ONNX must match PyTorch within PARITY_TOLERANCE (max abs diff) or nothing is
written. Then the offline TensorRT checks, and an FP16 engine where TensorRT and a GPU exist (FP16 tolerance).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from libs.features import Evidence, FeatureStore, candidate_pool, gnn_inputs, masked_scenarios, stack, transformer_inputs
from libs.model_io import GNN_RANKER, SPECS, TEXT_ENCODER, TRANSFORMER_RANKER
from libs.text import tokenize
from training.export.onnx_export import export_model, torch_outputs
from training.export.tensorrt import (
    TensorRTUnavailable,
    build_engine,
    check_engine_parity,
    offline_report,
    tensorrt_status,
)

PARITY_TOLERANCE = {TEXT_ENCODER: 1e-4, TRANSFORMER_RANKER: 1e-4, GNN_RANKER: 1e-4}
TRT_TOLERANCE = {TEXT_ENCODER: 2e-2, TRANSFORMER_RANKER: 5e-2, GNN_RANKER: 5e-2}  # FP16 engines


def text_batches(titles: list[str]) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    picked = [titles[i] for i in rng.choice(len(titles), 24, replace=False)]
    return [tokenize(picked[:16]), tokenize([picked[16].split()[0].lower()]), tokenize(picked[17:])]


def ranker_batches(name: str, store: FeatureStore, query_emb: np.ndarray, n_users: int = 4
                   ) -> list[dict[str, np.ndarray]]:
    """Ranking batches (B=1 and B=n_users, C = pool size), an explanation batch (masked scenarios) and a query."""
    users = sorted(store.users, key=lambda u: -len(store.users[u]))[:: max(1, len(store.users) // 50)][:n_users]
    build = transformer_inputs if name == TRANSFORMER_RANKER else gnn_inputs
    ctxs = [store.user_context(u) for u in users]
    pool = candidate_pool(store, ctxs[0])
    batches = [build(store, ctxs[0], pool)]
    shared = pool[:64]
    batches.append(stack([build(store, c, shared) for c in ctxs]))
    top = pool[:10]
    single = build(store, ctxs[1], top)
    evidence = [Evidence("history_item", int(ctxs[1].items[-1])), Evidence("repeat"), Evidence("popularity"),
                Evidence("history_position", 49), Evidence("user_neighbour", 0)]
    if name == TRANSFORMER_RANKER:
        single = transformer_inputs(store, ctxs[1], top, query_emb)
        evidence += [Evidence("query"), Evidence("query_embedding", query_emb[::-1].copy())]
    batches.append(masked_scenarios(single, evidence))
    new_product = build(store, ctxs[2], np.array([-1, *top[:3]]), new_cand_emb=np.tile(query_emb, (4, 1)))
    batches.append(new_product)
    return batches


def export_all(encoder: torch.nn.Module, rankers: dict[str, torch.nn.Module], store: FeatureStore, titles: list[str],
               repository: Path, out_dir: Path) -> dict:
    with torch.no_grad():
        q = tokenize(["heart holder"])
        query_emb = encoder(torch.from_numpy(q["input_ids"]), torch.from_numpy(q["attention_mask"]))[0].numpy()
    plan = [(TEXT_ENCODER, encoder, text_batches(titles))]
    plan += [(n, rankers[n], ranker_batches(n, store, query_emb)) for n in (TRANSFORMER_RANKER, GNN_RANKER)]
    trt_ok, trt_reason = tensorrt_status()
    results: dict = {"tensorrt": {"available": trt_ok, "reason": trt_reason}}
    for name, module, batches in plan:
        spec = SPECS[name]
        report = export_model(module.eval(), spec, batches, repository, tolerance=PARITY_TOLERANCE[name])
        onnx_path = Path(repository) / name / "1" / "model.onnx"
        entry = {"onnx_parity": report.as_dict(), "tensorrt_offline": offline_report(onnx_path, spec, batches)}
        if trt_ok:
            try:
                plan_path = build_engine(onnx_path, spec, onnx_path.with_name(".model.plan.tmp"))
                ref = [torch_outputs(module, spec, b) for b in batches]
                parity = check_engine_parity(plan_path, spec, batches, ref, TRT_TOLERANCE[name])
                if parity["ok"]:
                    plan_path.replace(onnx_path.with_name("model.plan"))
                else:
                    plan_path.unlink(missing_ok=True)
                entry["tensorrt_engine"] = parity
            except TensorRTUnavailable as exc:
                entry["tensorrt_engine"] = {"skipped": str(exc)}
        else:
            entry["tensorrt_engine"] = {"skipped": trt_reason}
        results[name] = entry
        print(f"export {name}: ONNX max abs diff {report.max_abs_diff} (tolerance {report.tolerance}); "
              f"TensorRT offline checks {'ok' if entry['tensorrt_offline']['ok'] else 'FAILED'}; "
              f"engine: {entry['tensorrt_engine'].get('skipped', 'built')}")
    (Path(out_dir) / "export_report.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results
