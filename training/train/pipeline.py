"""`python -m training.train`: title encoding -> rankers -> fusion -> export, seed 0, progress bars.

Steps:
1. encode every catalogue title with text_encoder (all-MiniLM-L6-v2, offline) -> artifacts/models/item_embeddings.npy;
   encode the training queries (one or two words of a title, see training.train.data) -> query_embeddings.npy.
2. train transformer_ranker and gnn_ranker (each a 2-seed ensemble served as one model; the members train in parallel
   worker processes, one thread each, so the same data gives the same weights) on purchases before the
   validation cut-off (14 days before the test window; examples = 14-day windows before it), score the validation
   window and fit the fusion weights on validation NDCG@20 -> fusion.json.
   Per-shelf weights are fitted on the same validation scores by each shelf's objective
   (training.train.shelf_fusion) -> fusion.json's "shelves".
   Then refit both with the same settings on purchases before the test cut-off, as every baseline in `make eval`
   is refitted. `make eval` scores the validation split with the first checkpoints and the test split with the
   refitted ones (neither window was ever a training label; features are rebuilt at each split's cut-off). The
   refitted ones are exported and served (they read newer history, popularity and neighbours at request time).
3. export text_encoder, transformer_ranker, gnn_ranker to triton_models/<name>/1/model.onnx, each after an
   ONNX-vs-PyTorch parity check on real batches; then a TensorRT engine where TensorRT and a GPU exist.
4. make that bundle 1 (training.bundles.adopt: artifacts/bundles/<id>/, CURRENT points at it); `make retrain`
   (training.retrain) builds the next ones from recorded events.

Every member's loss per epoch, and at the validation cut-off its validation NDCG@20 per epoch (on CURVE_USERS
validation customers), go to TensorBoard under runs/<run>/ (training.train.tracking; `make tensorboard`); the
bundle's manifest and train_report.json name the run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from libs.config import REPOSITORY, models_dir
from libs.fusion import PRIOR, Fusion, fit_normalisation, spread
from libs.model_io import FUSION_FILE
from libs.rankers import names as ranker_names
from training.models.rankers import SeedEnsemble
from training.train.checkpoints import checkpoint_path, load_checkpoint, save_checkpoint
from training.train.data import QueryBank, build_examples, query_variants
from training.train.trainer import (
    SEED,
    MemberJob,
    TrainConfig,
    score_catalogue,
    score_prior,
    seed_everything,
    store_for,
    train_members,
)
from training.train.titles import encode_titles
from training.train.shelf_fusion import shelf_weights
from training.train.tracking import RUNS_DIR, Validate, member_dir, new_run

FUSION_STEP = 0.05  # weight grid over the simplex (21 points for two rankers)
PRIOR_GRID = tuple(round(0.025 * k, 3) for k in range(13))  # the prior's weight, fitted after the rankers'
# Validation customers the per-epoch NDCG curve is computed on (a fixed sample: scoring them all after every epoch of
# every member would add minutes to training; the fusion below is fitted on all of them).
CURVE_USERS = 256


def encode_queries(titles: list[str], out_dir: Path, key: str, model, progress: bool) -> QueryBank:
    rng = np.random.default_rng(SEED)
    texts, owner = query_variants(titles, rng)
    path, meta = out_dir / "query_embeddings.npy", out_dir / "query_embeddings.json"
    if path.is_file() and meta.is_file() and json.loads(meta.read_text()).get("key") == key:
        emb = np.load(path)
    else:
        from training.models.text_encoder import encode_texts

        emb = encode_texts(model, texts, progress=progress)
        np.save(path, emb)
        meta.write_text(json.dumps({"key": key, "n": len(texts)}) + "\n")
    return QueryBank(texts, owner, emb, [t.upper() for t in titles])


def weight_grid(models: list[str], step: float = FUSION_STEP) -> list[dict[str, float]]:
    """Every weighting of `models` on the simplex with the given step (weights >= 0, summing to 1)."""
    n = round(1 / step)
    grid = [c for c in itertools.product(range(n + 1), repeat=len(models)) if sum(c) == n]
    return [{m: round(k * step, 4) for m, k in zip(models, c)} for c in grid]


def fit_fusion(scores: dict[str, np.ndarray], pools: np.ndarray, truth) -> dict:
    """Normalisation (each component's score mean and std over the validation candidates), the rankers' weights
    that give the best validation NDCG@20 (grid over the simplex; ties go to the most even weighting), then the
    purchase-frequency prior's weight (`scores[PRIOR]`, when given; grid PRIOR_GRID, ties to the smaller), and the
    fused score's spread over those candidates (explore_span, the unit of the repeat-vs-explore setting)."""
    from training.evaluate.metrics import ndcg_at_k

    models = [m for m in scores if m != PRIOR]
    centre, scale = fit_normalisation(scores, pools)
    first = scores[models[0]]

    def validation_ndcg(weights: dict[str, float]) -> float:
        fused = Fusion(weights, centre, scale).combine(scores)
        return float(ndcg_at_k(np.where(pools, fused, first), truth))  # outside the pool: the shared floor

    results = [(validation_ndcg(w), -float(np.ptp(list(w.values()))), w) for w in weight_grid(models)]
    best_ndcg, _, best = max(results, key=lambda r: r[:2])
    prior_grid = []
    if PRIOR in scores:
        prior_grid = [(validation_ndcg(best | {PRIOR: w}), -w, best | {PRIOR: w}) for w in PRIOR_GRID]
        best_ndcg, _, best = max(prior_grid, key=lambda r: r[:2])
    span = spread(Fusion(best, centre, scale).combine(scores)[np.asarray(pools, bool)])
    return Fusion(best, centre, scale, span).as_dict() | {
        "normalise": "fixed per component: (score - centre) / scale, fitted on the validation candidates (libs.fusion)",
        "fitted_on": "validation split, NDCG@20",
        "validation_ndcg20": best_ndcg,
        "grid": [{"weights": w, "ndcg20": v} for v, _, w in results + prior_grid],
    }


def run(
    out_dir: Path,
    repository: Path,
    n_windows: int,
    epochs: int,
    progress: bool = True,
    skip_export: bool = False,
    reuse: bool = False,
    dim: int = 64,
    seed: int = SEED,
    n_seeds: int = 2,
    runs: Path = RUNS_DIR,
    curve_users: int = CURVE_USERS,
) -> dict:
    from libs.catalog.store import load_dataset
    from training.evaluate.metrics import ndcg_at_k
    from training.evaluate.split import standard_splits
    from training.models.text_encoder import load_text_encoder

    torch.set_num_threads(2)
    seed_everything(SEED)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = load_dataset()
    validation, test = standard_splits(ds)
    titles = ds.items["title"].tolist()
    encoder = load_text_encoder()
    item_emb = encode_titles(titles, out_dir, ds.version, progress=progress, model=encoder)
    queries = encode_queries(titles, out_dir, ds.version, encoder, progress)
    timings["encode"] = time.perf_counter() - t0

    cfg = TrainConfig(epochs=epochs, dim=dim, seed=seed)
    run_name = new_run("train")
    report: dict = {
        "run": run_name,
        "runs_dir": str(runs),
        "dataset": ds.version,
        "config": asdict(cfg),
        "n_windows": n_windows,
        "seeds": n_seeds,
        "query_training": "queries are one or two words of a purchased item's title, embedded by "
        "text_encoder (synthetic; no real search logs)",
    }
    t = time.perf_counter()
    store = store_for(validation.train.purchases, validation.train.guest_sales, item_emb, validation.cutoff)
    tracking = (runs, run_name)
    validate = validation_curve(store, validation, curve_users, seed)
    models = train_at(
        validation, ds, item_emb, queries, cfg, n_windows, n_seeds, out_dir, reuse, progress, report, tracking, validate
    )
    timings["train"] = time.perf_counter() - t

    t = time.perf_counter()
    scores = {name: score_catalogue(name, m, store, validation.users, progress=progress) for name, m in models.items()}
    pools = next(iter(scores.values())) > -1.0e5  # every ranker scores the same candidate pool
    scores[PRIOR] = score_prior(store, validation.users)
    fusion = fit_fusion(scores, pools, validation.truth)
    fusion["validation_ndcg20_per_model"] = {n: float(ndcg_at_k(s, validation.truth)) for n, s in scores.items()}
    fusion["shelves"] = shelf_weights(
        fusion, models, store, ds, validation, scores, lambda m: print(m, file=sys.stderr)
    )
    (out_dir / FUSION_FILE).write_text(json.dumps(fusion, indent=2) + "\n")
    report["fusion"] = fusion
    timings["fusion"] = time.perf_counter() - t
    print(
        f"validation NDCG@20: {fusion['validation_ndcg20_per_model']} fused {fusion['validation_ndcg20']:.4f}"
        f" (weights {fusion['weights']})",
        file=sys.stderr,
    )

    # Refit: the same recipe and settings on everything before the test cut-off, as the baselines are refitted.
    # `make eval` scores the test split with these, and they are what is exported and served.
    t = time.perf_counter()
    refit_report: dict = {}
    models = train_at(
        test, ds, item_emb, queries, cfg, n_windows, n_seeds, out_dir, reuse, progress, refit_report, tracking
    )
    report["refit"] = refit_report | {"cutoff": str(test.cutoff)}
    timings["refit"] = time.perf_counter() - t

    if not skip_export:
        from training.export.export_all import export_all

        t = time.perf_counter()
        store = store_for(ds.purchases, ds.guest_sales, item_emb, test.window_end, ds.items["product_id"])
        report["export"] = export_all(encoder, models, store, titles, repository, out_dir)
        timings["export"] = time.perf_counter() - t
        from training.bundles import adopt

        (out_dir / "train_report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        report["bundle"] = adopt(out_dir.parent, out_dir, {"dataset": ds.version, "run": run_name}).id
    timings["total"] = time.perf_counter() - t0
    report["timings_s"] = {k: round(v, 1) for k, v in timings.items()}
    (out_dir / "train_report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def validation_curve(store, validation, n_users: int, seed: int) -> Validate | None:
    """A member's NDCG@20 on `n_users` validation customers (a fixed sample of those with purchases in the window),
    scored as `make eval` scores a ranker (its candidate pool, the popularity floor outside); None for n_users 0."""
    from training.evaluate.metrics import ndcg_at_k

    if n_users <= 0:
        return None
    rows = np.flatnonzero(np.diff(validation.truth.indptr) > 0)
    rows = np.sort(np.random.default_rng(seed).choice(rows, min(n_users, len(rows)), replace=False))
    users = [validation.users[r] for r in rows]
    truth = validation.truth[rows]
    return lambda name, model: ndcg_at_k(score_catalogue(name, model, store, users), truth)


def train_at(
    split,
    ds,
    item_emb: np.ndarray,
    queries: QueryBank,
    cfg: TrainConfig,
    n_windows: int,
    n_seeds: int,
    out_dir: Path,
    reuse: bool,
    progress: bool,
    report: dict,
    tracking: tuple[Path, str] | None = None,
    validate: Validate | None = None,
) -> dict[str, torch.nn.Module]:
    """Every ranker trained on purchases before `split.cutoff` (examples = 14-day windows before it; each ranker a
    seed ensemble of `n_seeds`), saved as checkpoints at that cut-off; with `reuse`, checkpoints already trained for
    this dataset and settings are loaded instead. `tracking` = (runs dir, run): each member's curves go to
    runs/<run>/<member> (`validate` adds the validation NDCG per epoch)."""
    examples = None  # built only when a ranker is trained (a minute of feature stores)
    models: dict[str, torch.nn.Module] = {}
    pending = []  # (ranker, checkpoint, member jobs) to train: all members of all rankers train together
    for name in ranker_names():
        path = checkpoint_path(out_dir, name, split.cutoff)
        if reuse and path.is_file():
            model, blob = load_checkpoint(path, item_emb)
            if (
                blob.get("dataset") == ds.version
                and blob.get("n_windows") == n_windows
                and len(blob["configs"]) == n_seeds
            ):
                models[name] = model
                report.setdefault("training", {})[name] = blob["info"] | {"reused_checkpoint": str(path)}
                continue
        if examples is None:
            examples = build_examples(split.train.purchases, split.train.guest_sales, item_emb, split.cutoff, n_windows)
        descs = [f"{name} seed {cfg.seed + k} < {split.cutoff.date()}" for k in range(n_seeds)]
        jobs = [
            MemberJob(name, replace(cfg, seed=cfg.seed + k), desc, log_dir=tracking and member_dir(*tracking, desc))
            for k, desc in enumerate(descs)
        ]
        pending.append((name, path, jobs))
    trained = iter(
        train_members(
            [j for _, _, jobs in pending for j in jobs],
            examples or [],
            ds.n_items,
            item_emb,
            queries,
            progress,
            validate=validate,
        )
    )
    for name, path, jobs in pending:
        members, info = [], {"members": []}
        for job in jobs:
            member, member_info = next(trained)
            members.append(member)
            info["members"].append(member_info | {"seed": job.cfg.seed})
        model = SeedEnsemble(members).eval() if n_seeds > 1 else members[0]
        save_checkpoint(path, model, name, split.cutoff, ds.version, info, n_windows)
        models[name] = model
        report.setdefault("training", {})[name] = info
    return {name: models[name] for name in ranker_names()}


def missing_artifacts(out_dir: Path, repository: Path) -> list[str]:
    from libs.model_io import ITEM_EMBEDDINGS_FILE
    from libs.rankers import specs

    want = [Path(repository) / name / "1" / "model.onnx" for name in specs()]
    want += [Path(out_dir) / ITEM_EMBEDDINGS_FILE, Path(out_dir) / FUSION_FILE]
    missing = [str(p) for p in want if not p.is_file()]
    fusion = Path(out_dir) / FUSION_FILE
    if fusion.is_file():
        try:
            Fusion.load(fusion)
        except (ValueError, KeyError) as exc:
            missing.append(f"{fusion} ({exc})")
    for name in ranker_names():
        if not list((Path(out_dir) / "checkpoints").glob(f"{name}-*.pt")):
            missing.append(f"{out_dir}/checkpoints/{name}-*.pt")
    # The services serve the current bundle (artifacts/bundles, next to out_dir): it and its Triton versions.
    from libs.bundles import BundleError, load_bundle

    try:
        bundle = load_bundle(Path(out_dir).parent)
        missing += [
            str(p)
            for name, v in bundle.versions.items()
            if not (p := Path(repository) / name / v / "model.onnx").is_file()
        ]
        missing += [f"{p} ({why})" for p, why in stale_inputs(repository, bundle.versions)]
    except BundleError as exc:
        missing.append(str(exc))
    return missing


def stale_inputs(repository: Path, versions: dict[str, str]) -> list[tuple[Path, str]]:
    """The served (`versions`: model -> Triton version) models whose inputs no longer match their served spec: an
    input missing or extra (e.g. exported before the rankers' wire format, libs/rankers/wire.py) or with other
    fixed sizes (e.g. a feature group widened since they were trained). They must be retrained, so `--check`
    reports them as missing."""
    import onnx

    from libs.rankers import specs

    stale = []
    for name, spec in specs().items():
        path = Path(repository) / name / str(versions.get(name, "")) / "model.onnx"
        if name in versions and path.is_file():
            model = onnx.load(str(path), load_external_data=False)
            got = {
                i.name: tuple(d.dim_value if d.HasField("dim_value") else -1 for d in i.type.tensor_type.shape.dim)
                for i in model.graph.input
            }
            if set(got) != set(spec.input_names):
                stale.append(
                    (path, f"inputs {sorted(got)} differ from the served spec's {sorted(spec.input_names)}: retrain")
                )
                continue
            for t in spec.inputs:
                want = t.shape  # without the batch axis; -1 = dynamic
                have = got[t.name]
                if len(have) != len(want) + 1 or any(w != -1 and h != w for h, w in zip(have[1:], want)):
                    stale.append((path, f"input {t.name} {have} differs from libs.model_io {want}: retrain"))
                    break
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=models_dir(), help="artifacts dir (artifacts/models)")
    parser.add_argument("--repository", type=Path, default=REPOSITORY)
    parser.add_argument("--windows", type=int, default=10, help="14-day example windows before each cut-off")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--dim", type=int, default=64, help="hidden size of both rankers")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--seeds", type=int, default=2, help="members per ranker (seed ensemble served as one model)")
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument(
        "--reuse-checkpoints",
        action="store_true",
        help="load rankers already trained for this dataset and settings instead of retraining",
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--runs", type=Path, default=RUNS_DIR, help="TensorBoard runs dir (`make tensorboard`)")
    parser.add_argument(
        "--curve-users",
        type=int,
        default=CURVE_USERS,
        help="validation customers of the per-epoch NDCG curve (0 = loss curves only)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 0 when the trained artifacts are all present (no training), 1 otherwise",
    )
    args = parser.parse_args(argv)
    if args.check:
        missing = missing_artifacts(args.out, args.repository)
        for m in missing:
            print(f"missing: {m}", file=sys.stderr)
        return 1 if missing else 0
    report = run(
        args.out,
        args.repository,
        args.windows,
        args.epochs,
        not args.no_progress,
        args.skip_export,
        args.reuse_checkpoints,
        args.dim,
        args.seed,
        args.seeds,
        args.runs,
        args.curve_users,
    )
    print(json.dumps(report["timings_s"]))
    return 0
