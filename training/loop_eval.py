"""`make loop-eval`: does the loop learn? Recorded events -> retrain -> better rankings, measured.

From the shared data the last 4 weeks are kept aside (windows as in training/evaluate/split.py):
1. the first 2 of them are sent to a running gateway as real RecordEvents calls (their purchases, their times);
2. `training.retrain` builds bundle N+1 from the prepared data before those 4 weeks plus the recorded events;
3. NDCG@20 (full ranking, returning customers) on the last 2 weeks for
   (a) the frozen bundle N, the recorded events only as real-time context (as served: libs.history),
   (b) the retrained bundle N+1, same features and context,
   (c) the best baseline refitted on the same data (prepared data + the recorded events as purchases).
Everything runs in a private copy (build/loop-eval/): the real bundles, event store and repository are untouched.
Writes reports/loop.{json,md,png}. The frozen bundle must not have seen the 4 weeks (its data cut-off is checked):
the served bundle 1 is refitted up to the test cut-off, so the frozen one is its rankers as trained before the weeks
aside (training.bundles.rewind: the validation cut-off's checkpoints, same settings and fusion).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from libs.bundles import Bundle, load_bundle
from libs.config import REPO_ROOT, REPORTS_DIR, REPOSITORY, artifacts_dir, models_dir
from libs.domain import EventKind, UserEvent
from libs.model_io import FUSION_FILE, ITEM_EMBEDDINGS_FILE
from libs.rankers import names as ranker_names
from training.evaluate.stats import paired_bootstrap

BATCH = 500  # RecordEvents' limit per call
SLOW_BASELINES = {"lightgcn": "minutes to fit on 2 cores; 0.214 vs personal_freq 0.324 in make eval"}


def replay(gateway: str, purchases: pd.DataFrame, progress: bool) -> int:
    """Send `purchases` (dataset rows) as PURCHASE events with their own times; returns how many were accepted."""
    import grpc
    from google.protobuf.timestamp_pb2 import Timestamp
    from shop.common.v1 import common_pb2 as cpb
    from shop.gateway.v1 import gateway_service_pb2 as pb
    from shop.gateway.v1 import gateway_service_pb2_grpc as pb_grpc
    from tqdm import tqdm

    rows = purchases.sort_values("ts", kind="stable")
    accepted = 0
    with grpc.insecure_channel(gateway) as channel:
        stub = pb_grpc.GatewayServiceStub(channel)
        for start in tqdm(range(0, len(rows), BATCH), desc="RecordEvents", unit="call", disable=not progress):
            events = []
            for r in rows.iloc[start : start + BATCH].itertuples(index=False):
                ts = Timestamp()
                ts.FromDatetime(r.ts.to_pydatetime())  # the data's clock is naive UTC
                events.append(
                    pb.Event(
                        event_id=f"replay-{r.invoice_no}-{r.product_id}",
                        user_id=r.user_id,
                        product_id=r.product_id,
                        type=cpb.EVENT_TYPE_PURCHASE,
                        event_time=ts,
                        quantity=int(min(r.quantity, 2**31 - 1)),
                    )
                )
            accepted += stub.RecordEvents(pb.RecordEventsRequest(events=events), timeout=60).accepted_count
    return accepted


def record_through_gateway(root: Path, repository: Path, purchases: pd.DataFrame, work: Path, progress: bool) -> Path:
    """Start Triton + the services on the private copy, replay, stop. Returns the SQLite event store's path."""
    from libs.triton.launcher import TritonServer
    from libs.stack import Stack

    db = work / "events.sqlite3"
    with TritonServer(
        model_repository=repository, versions=load_bundle(root).versions, log_path=work / "triton.log"
    ) as triton:
        stack = Stack(
            env={
                "SHOP_ARTIFACTS_DIR": str(root),
                "SHOP_TRITON_URL": triton.grpc_url,
                "SHOP_EVENTS_DB": str(db),
                "SHOP_EVENTS_RETENTION_DAYS": "0",
            },
            log_dir=work / "logs",
        )
        try:
            stack.start(with_triton=False)
            accepted = replay(stack.addresses["gateway"], purchases, progress)
        finally:
            stack.stop()
    print(f"replayed {len(purchases)} purchases, {accepted} accepted", file=sys.stderr)
    return db


def bundle_scores(
    bundle: Bundle, store, users: np.ndarray, recent: dict[str, list[UserEvent]], progress: bool
) -> dict[str, np.ndarray]:
    """Per ranker and fused: scores [users, items] as the bundle would serve them (events as fresh history)."""
    from libs.fusion import FUSED, PRIOR, Fusion
    from libs.history import user_context
    from training.train.checkpoints import load_checkpoint
    from training.train.trainer import score_catalogue, score_prior

    item_emb = np.load(bundle.path / ITEM_EMBEDDINGS_FILE)
    scores = {}

    def context(user: str):
        return user_context(store, user, recent.get(user, ()))

    for name in ranker_names():
        model, _ = load_checkpoint(bundle.path / "checkpoints" / f"{name}.pt", item_emb)
        scores[name] = score_catalogue(name, model, store, users, progress=progress, context=context)
    first = next(iter(scores.values()))
    pools = first > -1.0e5  # outside the pool: the popularity floor every ranker shares (training.train.pipeline)
    fused = Fusion.load(bundle.path / FUSION_FILE).combine(scores | {PRIOR: score_prior(store, users, context)})
    return scores | {FUSED: np.where(pools, fused, first)}


def paired_difference(a: np.ndarray, b: np.ndarray, resamples: int = 2000, seed: int = 0) -> dict:
    """Mean of b - a over users, with a 95% paired bootstrap interval (training.evaluate.stats)."""
    d = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    ci = paired_bootstrap(b, a, n_resamples=resamples, confidence=0.95, seed=seed)
    return {
        "mean": float(d.mean()),
        "ci95": [ci["difference_ci_low"], ci["difference_ci_high"]],
        "users_better": int((d > 0).sum()),
        "users_worse": int((d < 0).sum()),
        "users": ci["users"],
        "resamples": resamples,
    }


def baseline_scores(train, users: np.ndarray) -> dict[str, np.ndarray]:
    from training.evaluate.registry import load_registry

    out = {}
    for name, entry in load_registry().items():
        if entry.factory.__module__ != "training.evaluate.baselines" or name in SLOW_BASELINES:
            continue
        scorer = entry.factory()
        scorer.fit(train)
        out[name] = scorer.score(list(users))
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [
        "(a) frozen bundle\n+ events as context",
        "(b) retrained bundle",
        f"(c) best baseline\n{result['c_best_baseline']['name']}",
    ]
    values = [result["a_frozen"]["ndcg@20"], result["b_retrained"]["ndcg@20"], result["c_best_baseline"]["ndcg@20"]]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    bars = ax.bar(labels, values, color=["#999999", "#2a7ab0", "#d08c2a"])
    ax.bar_label(bars, fmt="%.4f")
    ax.set_ylim(min(values) * 0.9, max(values) * 1.04)
    ax.set_ylabel("NDCG@20 (full ranking, returning customers)")
    last_day = pd.Timestamp(result["windows"]["score"][1]) - pd.Timedelta(days=1)
    ax.set_title(
        f"{result['events']['replayed']} purchases replayed through RecordEvents\n"
        f"scored on {result['windows']['score'][0][:10]} .. {last_day:%Y-%m-%d} (y axis cut)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def loop_verdict(frozen: float, retrained: float, ci95: tuple[float, float]) -> str:
    """What the comparison shows: better only when the paired interval of the difference is above 0."""
    if retrained <= frozen:
        return "(b) is NOT better than (a): retraining on the recorded events did not improve the ranking here"
    if ci95[0] <= 0:  # ahead on average, but by no more than resampling the customers moves it
        return (
            "(b) > (a) on average, but the interval includes 0: the retrained bundle is not shown to rank "
            "better than the frozen one with the same events as context"
        )
    return "(b) > (a): the retrained bundle ranks better than the frozen one with the same events as context"


def markdown(r: dict) -> str:
    a, b, c = r["a_frozen"], r["b_retrained"], r["c_best_baseline"]
    d = r["b_minus_a"]
    verdict = loop_verdict(a["ndcg@20"], b["ndcg@20"], d["ci95"])
    verdict += (
        f"; per-user difference {d['mean']:+.4f} NDCG@20, 95% paired bootstrap interval "
        f"[{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}] ({d['resamples']} resamples); better for "
        f"{d['users_better']} customers, worse for {d['users_worse']} of {d['users']}."
    )
    lines = [
        "# Does the loop learn? (`make loop-eval`)",
        "",
        f"Replayed through the gateway (RecordEvents): {r['events']['replayed']} purchases of "
        f"{r['windows']['replay'][0][:10]} .. {r['windows']['replay'][1][:10]} (exclusive), "
        f"{r['events']['accepted']} accepted. Scored on {r['windows']['score'][0][:10]} .. "
        f"{r['windows']['score'][1][:10]}: {r['users']} returning customers, full ranking over "
        f"{r['items']} products.",
        "",
        "| | bundle | NDCG@20 | " + " | ".join(f"{m} NDCG@20" for m in ranker_names()) + " |",
        "|---|---|---:|" + "---:|" * len(ranker_names()),
        f"| (a) frozen, events as real-time context | {a['bundle']} | {a['ndcg@20']:.4f} | "
        + " | ".join(f"{a['per_model'][m]:.4f}" for m in ranker_names())
        + " |",
        f"| (b) retrained (`make retrain`) | {b['bundle']} | {b['ndcg@20']:.4f} | "
        + " | ".join(f"{b['per_model'][m]:.4f}" for m in ranker_names())
        + " |",
        f"| (c) best baseline refitted on the same data | {c['name']} | {c['ndcg@20']:.4f} | "
        + " | " * (len(ranker_names()) - 1)
        + " |",
        "",
        verdict,
        "",
        "Baselines refitted: "
        + ", ".join(f"{k} {v:.4f}" for k, v in r["baselines"].items())
        + f" (not run: {', '.join(f'{k}: {v}' for k, v in SLOW_BASELINES.items())}).",
        "",
        f"Retrain: {json.dumps(r['retrain'])}; {r['seconds']} s in all.",
    ]
    return "\n".join(lines) + "\n"


def run(work: Path, out: Path, progress: bool, epochs: int, windows: int) -> dict:
    from libs.catalog.store import load_dataset
    from libs.events import SqliteEventStore
    from libs.fusion import FUSED
    from training.bundles import private_copy, rewind
    from training.evaluate.metrics import ndcg_at_k, per_user_metrics
    from training.evaluate.split import SplitConfig, make_split, window_bounds
    from training.retrain import RetrainConfig, extended_purchases, retrain
    from training.train.trainer import store_for

    t0 = time.perf_counter()
    src = artifacts_dir()
    ds = load_dataset(src)
    last = max(ds.purchases["ts"].max(), ds.guest_sales["ts"].max())
    aside, score_start, end = window_bounds(last, SplitConfig())  # 4 weeks aside: 2 replayed, 2 scored
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    root, repository = private_copy(src, REPOSITORY, work)
    frozen = load_bundle(root)
    if pd.Timestamp(frozen.manifest["data_cutoff"]) > aside:
        # The served bundle is refitted up to the test cut-off, inside the weeks set aside: the frozen bundle is
        # the rankers as trained before them (the validation cut-off's checkpoints, same settings and fusion).
        frozen = rewind(root, models_dir(), aside)
    if pd.Timestamp(frozen.manifest["data_cutoff"]) > aside:
        raise SystemExit(
            f"bundle {frozen.id} was trained on data up to {frozen.manifest['data_cutoff']}, "
            f"after {aside}: it saw the weeks set aside"
        )
    replayed = ds.purchases[(ds.purchases["ts"] >= aside) & (ds.purchases["ts"] < score_start)]
    db = record_through_gateway(root, repository, replayed, work, progress)
    store = SqliteEventStore(db)
    try:
        recorded = store.read_purchases()
    finally:
        store.close()

    cfg = RetrainConfig(epochs=epochs, windows=windows, data_end=str(aside))
    retrained = retrain(root, repository, recorded, cfg, progress, events_source=f"sqlite {db}")

    purchases, guests, _ = extended_purchases(ds.purchases, ds.guest_sales, ds.items, recorded, aside)
    scored = ds.purchases[(ds.purchases["ts"] >= score_start) & (ds.purchases["ts"] < end)]
    split = make_split(pd.concat([purchases, scored], ignore_index=True), guests, ds.items, score_start, end, "loop")
    # As served: the feature store knows the prepared data (before the weeks aside); the recorded events reach
    # the rankers as each user's fresh history.
    item_emb = np.load(frozen.path / ITEM_EMBEDDINGS_FILE)
    served = store_for(ds.purchases[ds.purchases["ts"] < aside], guests, item_emb, aside, ds.items["product_id"])
    recent: dict[str, list[UserEvent]] = defaultdict(list)
    for user, product, ts, quantity, _ in recorded:
        recent[user].append(UserEvent(product, EventKind.PURCHASE, ts, quantity))

    per_user = {}

    def measured(bundle: Bundle) -> dict:
        s = bundle_scores(bundle, served, split.users, recent, progress)
        per_user[bundle.id] = per_user_metrics(s[FUSED], split.truth)["ndcg@20"].to_numpy()
        return {
            "bundle": bundle.id,
            "ndcg@20": float(ndcg_at_k(s[FUSED], split.truth)),
            "per_model": {m: float(ndcg_at_k(s[m], split.truth)) for m in ranker_names()},
        }

    a, b = measured(frozen), measured(retrained)
    b_minus_a = paired_difference(per_user[frozen.id], per_user[retrained.id])
    baselines = {k: float(ndcg_at_k(v, split.truth)) for k, v in baseline_scores(split.train, split.users).items()}
    best = max(baselines, key=baselines.get)
    result = {
        "windows": {
            "aside_from": str(aside),
            "replay": [str(aside), str(score_start)],
            "score": [str(score_start), str(end)],
        },
        "events": {"replayed": len(replayed), "accepted": len(recorded)},
        "users": len(split.users),
        "items": ds.n_items,
        "a_frozen": a,
        "b_retrained": b,
        "c_best_baseline": {"name": best, "ndcg@20": baselines[best]},
        "baselines": baselines,
        "b_better_than_a": b["ndcg@20"] > a["ndcg@20"],
        "b_minus_a": b_minus_a,
        "retrain": {"epochs_per_stage": epochs, "windows": windows, "validation": retrained.manifest["validation"]},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "loop.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "loop.md").write_text(markdown(result))
    plot(result, out / "loop.png")
    return result


def main(argv: list[str] | None = None) -> int:
    from training.retrain import RetrainConfig

    parser = argparse.ArgumentParser(prog="python -m training.loop_eval", description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO_ROOT / "build" / "loop-eval")
    parser.add_argument("--out", type=Path, default=REPORTS_DIR)
    parser.add_argument("--epochs", type=int, default=RetrainConfig.epochs)
    parser.add_argument("--windows", type=int, default=RetrainConfig.windows)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.work, args.out, not args.no_progress, args.epochs, args.windows)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
