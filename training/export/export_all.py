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

from libs.explain import Mask, masked_scenarios
from libs.features import FeatureStore, candidate_pool, stack
from libs.model_io import TEXT_ENCODER_SPEC
from libs.rankers import get as ranker
from libs.text import tokenize
from training.export.onnx_export import export_model, torch_outputs
from training.models.rankers import serving_form, wire_form
from training.export.tensorrt import (
    TensorRTUnavailable,
    build_engine,
    check_engine_parity,
    offline_report,
    tensorrt_status,
)

TEXT_PARITY_TOLERANCE = 1e-4
TEXT_TRT_TOLERANCE = 2e-2  # FP16 engine


def text_batches(titles: list[str]) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    picked = [titles[i] for i in rng.choice(len(titles), 24, replace=False)]
    return [tokenize(picked[:16]), tokenize([picked[16].split()[0].lower()]), tokenize(picked[17:])]


def ranker_batches(
    name: str, store: FeatureStore, query_emb: np.ndarray, n_users: int = 4
) -> list[dict[str, np.ndarray]]:
    """Ranking batches (B=1 and B=n_users, C = pool size), an explanation batch (masked scenarios), a new product."""
    r = ranker(name)
    q = query_emb if r.reads_query else None
    users = sorted(store.users, key=lambda u: -len(store.users[u]))[:: max(1, len(store.users) // 50)][:n_users]
    ctxs = [store.user_context(u) for u in users]
    pool = candidate_pool(store, ctxs[0])
    batches = [r.inputs(store, ctxs[0], pool)]
    shared = pool[:64]
    batches.append(stack([r.inputs(store, c, shared, q) for c in ctxs]))
    top = pool[:10]
    masks = [
        Mask("history_item", int(ctxs[1].items[-1])),
        Mask("repeat"),
        Mask("popularity"),
        Mask("query"),
        Mask("query_embedding", query_emb[::-1].copy()),
    ]
    masks.append(Mask("all", tuple(masks[:4])))
    batches.append(masked_scenarios(r.inputs(store, ctxs[1], top, q), masks, r.history_slots))
    batches.append(r.inputs(store, ctxs[2], np.array([-1, *top[:3]]), q, np.tile(query_emb, (4, 1))))
    return batches


def export_all(
    encoder: torch.nn.Module,
    rankers: dict[str, torch.nn.Module],
    store: FeatureStore,
    titles: list[str],
    repository: Path,
    out_dir: Path,
    version: int = 1,
    encoder_from: int | None = None,
) -> dict:
    """Export every model as Triton `version`. `encoder_from`: the text encoder's weights did not change since that
    version (a retrain), so its files are linked instead of exported again."""
    with torch.no_grad():
        q = tokenize(["heart holder"])
        query_emb = encoder(torch.from_numpy(q["input_ids"]), torch.from_numpy(q["attention_mask"]))[0].numpy()

    def no_wire(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return batch

    # (spec the module reads, the module, batches, served form, spec the served form reads, to_wire, tolerances)
    plan = (
        []
        if encoder_from
        else [
            (
                TEXT_ENCODER_SPEC,
                encoder,
                text_batches(titles),
                encoder.eval(),
                TEXT_ENCODER_SPEC,
                no_wire,
                TEXT_PARITY_TOLERANCE,
                TEXT_TRT_TOLERANCE,
            )
        ]
    )
    for n, m in rankers.items():
        r = ranker(n)
        plan.append(
            (
                r.spec,
                m,
                ranker_batches(n, store, query_emb),
                wire_form(serving_form(m), n, store.item_emb),
                r.served_spec,
                r.to_wire,
                r.parity_tolerance,
                r.trt_tolerance,
            )
        )
    trt_ok, trt_reason = tensorrt_status()
    results: dict = {"tensorrt": {"available": trt_ok, "reason": trt_reason}}
    if encoder_from:
        from training.bundles import link_model_version

        link_model_version(repository, TEXT_ENCODER_SPEC.name, encoder_from, version)
        results[TEXT_ENCODER_SPEC.name] = {"linked_from_version": encoder_from}
    for spec, module, batches, served, served_spec, to_wire, tolerance, trt_tolerance in plan:
        name = spec.name
        report = export_model(
            served,
            spec,
            batches,
            repository,
            version,
            tolerance=tolerance,
            reference=module.eval(),
            served=served_spec,
            to_wire=to_wire,
        )
        onnx_path = Path(repository) / name / str(version) / "model.onnx"
        wire_batches = [to_wire(b) for b in batches]
        entry = {
            "onnx_parity": report.as_dict(),
            "tensorrt_offline": offline_report(onnx_path, served_spec, wire_batches),
        }
        if trt_ok:
            try:
                plan_path = build_engine(onnx_path, served_spec, onnx_path.with_name(".model.plan.tmp"))
                ref = [torch_outputs(module, spec, b) for b in batches]
                parity = check_engine_parity(plan_path, served_spec, wire_batches, ref, trt_tolerance)
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
        print(
            f"export {name}: ONNX max abs diff {report.max_abs_diff} (tolerance {report.tolerance}); "
            f"TensorRT offline checks {'ok' if entry['tensorrt_offline']['ok'] else 'FAILED'}; "
            f"engine: {entry['tensorrt_engine'].get('skipped', 'built')}"
        )
    (Path(out_dir) / "export_report.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results
