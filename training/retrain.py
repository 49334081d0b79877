"""`python -m training.retrain` (`make retrain`): prepared dataset + every recorded purchase -> bundle N+1.

1. Recorded purchases (event store: SQLite, or PostgreSQL with SHOP_EVENTS_DSN) are put on the dataset's schema
   (`events_frame`) and appended after the data's end, in their order and spacing.
2. Warm start from the current bundle's checkpoints. Stage 1 continues training on windows before the last 14 days
   (the validation window), scores that window and refits the fusion (libs.fusion) on it: the manifest's metrics
   are out of sample. Stage 2 continues from stage 1 on windows ending at the new data's end, so the newest
   purchases (the recorded events) are labels too.
3. Export every model as Triton version N+1 (ONNX parity-checked; the text encoder did not change: linked) and
   write the bundle (libs/bundles.py) with its manifest. CURRENT is not moved: `make rollout` does that after
   Triton has loaded N+1.

Each member's loss per epoch (and in stage 1 its validation NDCG@20) goes to TensorBoard under runs/retrain-<time>/
(training.train.tracking); the manifest names that run.

`--data-end` cuts the prepared data first (make loop-eval: the weeks after it arrive as recorded events only).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from libs.bundles import Bundle, load_bundle
from libs.config import REPOSITORY, artifacts_dir
from libs.events.base import Purchase
from libs.model_io import FUSION_FILE, ITEM_EMBEDDINGS_FILE
from libs.rankers import names as ranker_names

WINDOW_DAYS = 14


@dataclass(frozen=True)
class RetrainConfig:
    epochs: int = 2  # per stage, from the warm start (1 was not shown to help: make loop-eval, README)
    windows: int = 4  # 14-day example windows per stage
    lr: float = 5e-4  # below training's 2e-3: continue, do not forget
    data_end: str | None = None  # cut the prepared data here (exclusive); None = all of it


def events_frame(items: pd.DataFrame, purchases: Sequence[Purchase], after: pd.Timestamp) -> pd.DataFrame:
    """Recorded purchases as purchase rows of the dataset (user_id, product_id, item_idx, invoice_no, ts, quantity,
    price, country), unknown products dropped.

    Times: the first event lands one second after `after` (the data's end) and the others keep their spacing, so
    wall-clock events recorded years after the data stay in order right after it; events of one user at one
    instant form one basket (invoice).
    """
    cols = ["user_id", "product_id", "item_idx", "invoice_no", "ts", "quantity", "price", "country"]
    index = pd.Index(items["product_id"])
    rows = [(u, p, ts, q) for u, p, ts, q, _ in purchases if p in index]
    if not rows:
        return pd.DataFrame(
            {
                c: pd.Series(dtype=t)
                for c, t in zip(cols, [str, str, "int32", str, "datetime64[ns]", "int64", "float64", str])
            }
        )
    df = pd.DataFrame(rows, columns=["user_id", "product_id", "epoch", "quantity"]).sort_values("epoch", kind="stable")
    shift = pd.to_timedelta(df["epoch"] - df["epoch"].iloc[0], unit="s")
    df["ts"] = (pd.Timestamp(after) + pd.Timedelta(seconds=1) + shift).astype("datetime64[ns]")
    df["item_idx"] = index.get_indexer(df["product_id"]).astype(np.int32)
    df["invoice_no"] = "EV" + df["user_id"].astype(str) + "-" + df["epoch"].map(lambda e: f"{e:.6f}")
    df["quantity"] = df["quantity"].astype(np.int64)
    df["price"] = items["price"].to_numpy()[df["item_idx"].to_numpy()].astype(np.float64)
    df["country"] = ""
    return df[cols].reset_index(drop=True)


def extended_purchases(
    dataset_purchases: pd.DataFrame,
    guest_sales: pd.DataFrame,
    items: pd.DataFrame,
    recorded: Sequence[Purchase],
    data_end: pd.Timestamp | None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """(purchases + recorded events sorted by customer then time, guest sales, the cut) with the data cut at
    `data_end` (exclusive) when given."""
    if data_end is not None:
        dataset_purchases = dataset_purchases[dataset_purchases["ts"] < data_end]
        guest_sales = guest_sales[guest_sales["ts"] < data_end]
    last = max(dataset_purchases["ts"].max(), guest_sales["ts"].max() if len(guest_sales) else pd.Timestamp.min)
    events = events_frame(items, recorded, last)
    merged = pd.concat([dataset_purchases, events], ignore_index=True)
    merged = merged.sort_values(["user_id", "ts"], kind="stable").reset_index(drop=True)
    return merged, guest_sales.reset_index(drop=True), last


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else pd.Timestamp(epoch, unit="s", tz="UTC").isoformat()


def _fine_tune(
    name: str,
    model,
    examples,
    n_items: int,
    item_emb: np.ndarray,
    cfg,
    queries,
    progress: bool,
    desc: str,
    tracking: tuple[Path, str] | None = None,
    validate=None,
):
    """Continue training each seed member of `model` (a SeedEnsemble or one module) on `examples`; curves to
    runs/<run>/<member> when `tracking` = (runs dir, run) is given (training.train.tracking)."""
    from training.models.rankers import SeedEnsemble
    from training.train.tracking import member_dir
    from training.train.trainer import MemberJob, train_members

    members = list(model.members) if isinstance(model, SeedEnsemble) else [model]
    descs = [f"{desc} {name} member {k}" for k in range(len(members))]
    jobs = [
        MemberJob(name, replace(cfg, seed=cfg.seed + k), d, init=m, log_dir=tracking and member_dir(*tracking, d))
        for k, (m, d) in enumerate(zip(members, descs))
    ]
    trained = train_members(jobs, examples, n_items, item_emb, queries, progress, validate=validate)
    tuned, infos = map(list, zip(*trained))
    return (SeedEnsemble(tuned).eval() if len(tuned) > 1 else tuned[0]), infos


def retrain(
    root: Path,
    repository: Path,
    recorded: Sequence[Purchase],
    cfg: RetrainConfig,
    progress: bool = True,
    events_source: str = "",
    runs: Path | None = None,
) -> Bundle:
    import torch

    from libs.catalog.store import load_dataset
    from training.bundles import next_number, side_files, write_bundle
    from training.evaluate.metrics import ndcg_at_k
    from training.evaluate.split import make_split
    from training.export.export_all import export_all
    from training.models.text_encoder import load_text_encoder
    from training.train.checkpoints import load_checkpoint, save_checkpoint
    from training.train.data import build_examples
    from libs.fusion import PRIOR
    from training.train.trainer import SEED, TrainConfig, seed_everything
    from training.train.trainer import score_catalogue, score_prior, store_for
    from training.train.pipeline import CURVE_USERS, encode_queries, fit_fusion, validation_curve
    from training.train.tracking import RUNS_DIR, new_run

    t0 = time.perf_counter()
    torch.set_num_threads(2)
    seed_everything(SEED)
    ds = load_dataset(root)
    parent = load_bundle(root)
    item_emb = np.load(parent.path / ITEM_EMBEDDINGS_FILE)
    cut = pd.Timestamp(cfg.data_end) if cfg.data_end else None
    purchases, guests, data_last = extended_purchases(ds.purchases, ds.guest_sales, ds.items, recorded, cut)
    n_events = len(purchases) - int((ds.purchases["ts"] < cut).sum() if cut is not None else len(ds.purchases))
    end = purchases["ts"].max().normalize() + pd.Timedelta(days=1)
    val_cut = end - pd.Timedelta(days=WINDOW_DAYS)
    validation = make_split(purchases, guests, ds.items, val_cut, end, name="validation")
    encoder = load_text_encoder()
    (root / "models").mkdir(exist_ok=True)
    queries = encode_queries(ds.items["title"].tolist(), root / "models", ds.version, encoder, progress)
    train_cfg = TrainConfig(epochs=cfg.epochs, lr=cfg.lr)
    run_name = new_run("retrain")
    tracking = (runs or RUNS_DIR, run_name)
    store = store_for(validation.train.purchases, guests, item_emb, val_cut)
    validate = validation_curve(store, validation, CURVE_USERS, SEED)

    models, training = {}, {}
    for name in ranker_names():
        models[name], _ = load_checkpoint(parent.path / "checkpoints" / f"{name}.pt", item_emb)
    for stage, cutoff in (("stage 1", val_cut), ("stage 2", end)):
        examples = build_examples(purchases, guests, item_emb, cutoff, cfg.windows)
        for name in ranker_names():
            models[name], infos = _fine_tune(
                name,
                models[name],
                examples,
                ds.n_items,
                item_emb,
                train_cfg,
                queries,
                progress,
                stage,
                tracking,
                validate if stage == "stage 1" else None,  # stage 2 trains on the validation window
            )
            training.setdefault(name, {})[stage] = {"cutoff": str(cutoff), "members": infos}
        if stage == "stage 1":  # out-of-sample: fit the fusion and measure on the validation window
            scores = {n: score_catalogue(n, m, store, validation.users, progress=progress) for n, m in models.items()}
            pools = next(iter(scores.values())) > -1.0e5
            scores[PRIOR] = score_prior(store, validation.users)
            fusion = fit_fusion(scores, pools, validation.truth)
            fusion["validation_ndcg20_per_model"] = {
                n: float(ndcg_at_k(s, validation.truth)) for n, s in scores.items()
            }

    number = next_number(root, repository)
    with tempfile.TemporaryDirectory(prefix="retrain-") as tmp:
        out = Path(tmp)
        np.save(out / ITEM_EMBEDDINGS_FILE, item_emb)
        (out / FUSION_FILE).write_text(json.dumps(fusion, indent=2) + "\n")
        checkpoints = {}
        for name, model in models.items():
            checkpoints[name] = out / f"{name}.pt"
            save_checkpoint(checkpoints[name], model, name, end, ds.version, training[name], cfg.windows)
        store = store_for(purchases, guests, item_emb, end, ds.items["product_id"])
        export = export_all(
            encoder,
            models,
            store,
            ds.items["title"].tolist(),
            repository,
            out,
            version=number,
            encoder_from=parent.versions["text_encoder"],
        )
        report = {
            "config": asdict(cfg),
            "training": training,
            "export": export,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        (out / "train_report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        info = {
            "run": run_name,
            "dataset": ds.version,
            "data_cutoff": str(cut or data_last),
            "trained_until": str(end),
            "events": {
                "count": n_events,
                "source": events_source,
                "recorded_from": _iso(min((p[2] for p in recorded), default=None)),
                "recorded_to": _iso(max((p[2] for p in recorded), default=None)),
            },
            "validation": {
                "window": [str(val_cut), str(end)],
                "users": len(validation.users),
                "ndcg20_fused": fusion["validation_ndcg20"],
                "ndcg20_per_model": fusion["validation_ndcg20_per_model"],
                "fusion_weights": fusion["weights"],
            },
            "retrain": asdict(cfg),
        }
        return write_bundle(root, number, side_files(out, checkpoints), info, parent=parent.id, make_current=False)


def main(argv: list[str] | None = None) -> int:
    from libs.config import EventStoreSettings
    from libs.events import describe, open_event_store

    parser = argparse.ArgumentParser(prog="python -m training.retrain", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=RetrainConfig.epochs, help="epochs per stage")
    parser.add_argument("--windows", type=int, default=RetrainConfig.windows, help="14-day windows per stage")
    parser.add_argument("--lr", type=float, default=RetrainConfig.lr)
    parser.add_argument("--data-end", default=None, help="use prepared data before this day only (loop-eval)")
    parser.add_argument("--repository", type=Path, default=REPOSITORY)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    root = artifacts_dir()
    settings = EventStoreSettings()
    store, source = open_event_store(settings, root), describe(settings, root)
    try:
        recorded = store.read_purchases()
    finally:
        store.close()
    print(f"{len(recorded)} recorded purchases from {source}", file=sys.stderr)
    cfg = RetrainConfig(args.epochs, args.windows, args.lr, args.data_end)
    bundle = retrain(root, args.repository, recorded, cfg, not args.no_progress, source)
    print(
        json.dumps(
            {
                "bundle": bundle.id,
                "parent": bundle.parent,
                "run": bundle.manifest.get("run"),
                "events": bundle.manifest["events"],
                "validation": bundle.manifest["validation"],
            },
            indent=2,
        )
    )
    print(f"bundle {bundle.id} written; `make rollout` serves it", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
