"""Training loop (listwise softmax over sampled candidates) and full-catalogue scoring for both rankers."""

from __future__ import annotations

import copy
import math
import multiprocessing
import random
import os
import time
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from libs.features import FeatureStore, UserContext, candidate_pool, stack
from libs.features.frequency import frequency_prior
from libs.rankers import get as ranker
from training.models.rankers import new_module
from training.train.data import Example, QueryBank, make_batch
from training.train.tracking import LOSS, VALIDATION_NDCG, EpochLog, Validate

SEED = 0


@dataclass
class TrainConfig:
    epochs: int = 4
    batch_size: int = 32
    candidates: int = 192
    lr: float = 2e-3
    weight_decay: float = 1e-5
    dim: int = 64
    dropout: float = 0.1
    query_share: float = 0.3  # transformer only: share of examples trained with a title-derived query
    seed: int = SEED
    # One thread: two made training non-reproducible (other weights from the same seed, run to run) and were no
    # faster (batches this small: 12.3 s vs 12.8 s for 3 epochs); members train in parallel instead (train_members).
    threads: int = 1
    extra: dict = field(default_factory=dict)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's, numpy's and torch's global generators; a fresh numpy Generator from the same seed."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def listwise_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy against the uniform distribution over each row's positives (labels -1 ignored)."""
    valid = labels >= 0
    logits = scores.masked_fill(~valid, -1e9)
    logp = torch.log_softmax(logits, dim=-1)
    pos = (labels > 0).float()
    n_pos = pos.sum(-1)
    keep = n_pos > 0
    per_row = -(logp * pos).sum(-1) / n_pos.clamp(min=1.0)
    return per_row[keep].mean()


def new_model(name: str, n_items: int, item_emb: np.ndarray, cfg: TrainConfig) -> torch.nn.Module:
    return new_module(name, {"n_items": n_items, "dim": cfg.dim, "dropout": cfg.dropout}, item_emb)


def train_ranker(
    name: str,
    examples: list[Example],
    n_items: int,
    item_emb: np.ndarray,
    cfg: TrainConfig,
    queries: QueryBank | None = None,
    progress: bool = True,
    desc: str | None = None,
    init: torch.nn.Module | None = None,
    position: int | None = None,
    log_dir: Path | None = None,
    validate: Validate | None = None,
) -> tuple[torch.nn.Module, dict]:
    """Train a fresh ranker, or continue training `init` (warm start: `make retrain`). Each epoch's loss, and its
    validation NDCG@20 when `validate` is given, go to TensorBoard event files in `log_dir` (training.train.tracking)
    and to the returned info."""
    torch.set_num_threads(cfg.threads)
    rng = seed_everything(cfg.seed)
    model = new_model(name, n_items, item_emb, cfg) if init is None else init
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    spec = ranker(name).spec
    steps = cfg.epochs * ((len(examples) + cfg.batch_size - 1) // cfg.batch_size)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1.0 + math.cos(math.pi * min(s, steps) / max(steps, 1)))
    )
    bar = tqdm(total=steps, desc=desc or f"train {name}", unit="batch", disable=not progress, position=position)
    history, curve = [], []
    tracker = EpochLog(log_dir)
    started = time.perf_counter()
    model.train()
    for epoch in range(cfg.epochs):
        order = rng.permutation(len(examples))
        total, n = 0.0, 0
        for start in range(0, len(order), cfg.batch_size):
            batch_ex = [examples[i] for i in order[start : start + cfg.batch_size]]
            inputs, labels = make_batch(
                name, batch_ex, rng, cfg.candidates, queries=queries, query_share=cfg.query_share
            )
            args = [torch.from_numpy(inputs[k]) for k in spec.input_names]
            scores = model(*args)[0]
            loss = listwise_loss(scores, torch.from_numpy(labels))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(batch_ex)
            n += len(batch_ex)
            bar.update()
            bar.set_postfix(epoch=epoch + 1, loss=f"{total / n:.4f}")
        history.append(total / max(n, 1))
        if validate is not None:
            curve.append(float(validate(name, model.eval())))
            model.train()
        tracker.epoch(epoch + 1, {LOSS: history[-1], VALIDATION_NDCG: curve[-1] if curve else None})
    bar.close()
    tracker.close()
    model.eval()
    info = {"loss_per_epoch": history, "examples": len(examples), "seconds": time.perf_counter() - started}
    return model, info | ({"validation_ndcg20_per_epoch": curve} if curve else {})


@dataclass(frozen=True)
class MemberJob:
    """One model to train: a ranker with its config (its seed), optionally warm-started from `init`; its curves go
    to `log_dir` (TensorBoard) when given."""

    name: str
    cfg: TrainConfig
    desc: str
    init: torch.nn.Module | None = None
    log_dir: Path | None = None


_SHARED: dict = {}  # what forked workers read (fork shares it; nothing is pickled but each job's index and result)


def train_members(
    jobs: list[MemberJob],
    examples: list[Example],
    n_items: int,
    item_emb: np.ndarray,
    queries: QueryBank | None = None,
    progress: bool = True,
    workers: int | None = None,
    validate: Validate | None = None,
) -> list[tuple[torch.nn.Module, dict]]:
    """Train every job (e.g. the seed members of each ranker), in parallel worker processes, one per core, each on
    one thread: members are independent, so this is as fast as the cores allow and gives the same weights as
    training them one after the other. `queries` go to the rankers that read a query; `validate` scores each member
    after every epoch (in its worker: forked, not pickled)."""
    workers = min(len(jobs), workers or len(os.sched_getaffinity(0)))
    _SHARED.update(
        jobs=jobs,
        examples=examples,
        n_items=n_items,
        item_emb=item_emb,
        queries=queries,
        progress=progress,
        parallel=workers > 1,
        validate=validate,
    )
    try:
        if workers <= 1:
            return [_train_job(i) for i in range(len(jobs))]
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            states = list(pool.map(_train_job, range(len(jobs))))
    finally:
        _SHARED.clear()
    trained = []
    for job, (state, info) in zip(jobs, states):
        model = copy.deepcopy(job.init) if job.init is not None else new_model(job.name, n_items, item_emb, job.cfg)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        trained.append((model.eval(), info))
    return trained


def _train_job(index: int):
    s = _SHARED
    job = s["jobs"][index]
    # `init` stays as it was in the caller either way: a worker trains its forked copy, in-process trains a copy.
    init = copy.deepcopy(job.init) if job.init is not None and not s["parallel"] else job.init
    model, info = train_ranker(
        job.name,
        s["examples"],
        s["n_items"],
        s["item_emb"],
        job.cfg,
        queries=s["queries"] if ranker(job.name).reads_query else None,
        progress=s["progress"],
        desc=job.desc,
        init=init,
        position=index if s["parallel"] else None,
        log_dir=job.log_dir,
        validate=s["validate"],
    )
    if not s["parallel"]:
        return model, info
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}, info


def popularity_floor(store: FeatureStore, n_users: int) -> np.ndarray:
    """[n_users, n_items] scores below any model score (< -1e5), in popularity order: what a pool-based scorer
    gives the items outside each user's candidate pool (full-ranking protocol)."""
    floor = np.empty(store.n_items, np.float32)
    floor[store.top_popular] = -1.0e6 - np.arange(store.n_items, dtype=np.float32)
    return np.tile(floor, (n_users, 1))


@torch.no_grad()
def score_catalogue(
    name: str,
    model: torch.nn.Module,
    store: FeatureStore,
    user_ids,
    chunk: int = 16,
    progress: bool = False,
    context=None,
) -> np.ndarray:
    """[len(user_ids), n_items]: the ranker's scores on each user's candidate pool (libs.features.candidate_pool);
    items outside the pool rank below every pool item, by popularity (full-ranking protocol, two-stage model).
    `context(user_id)`: the user's history as served (e.g. with recorded events, libs.history); default: the
    store's."""
    out = popularity_floor(store, len(user_ids))
    bar = tqdm(total=len(user_ids), desc=f"score {name}", unit="user", disable=not progress)
    for start in range(0, len(user_ids), chunk):
        rows = []
        for u in user_ids[start : start + chunk]:
            ctx = context(str(u)) if context is not None else store.user_context(str(u))
            rows.append((ctx, candidate_pool(store, ctx)))
        for i, ((_, pool), scores) in enumerate(zip(rows, score_lists(name, model, store, rows, chunk))):
            out[start + i, pool] = scores
        bar.update(len(rows))
    bar.close()
    return out


def score_lists(
    name: str,
    model: torch.nn.Module,
    store: FeatureStore,
    rows: Sequence[tuple[UserContext, np.ndarray]],
    chunk: int = 16,
) -> list[np.ndarray]:
    """The ranker's scores of each (user context, candidate item indices) row, batched `chunk` rows at a time
    (a shelf's candidates rather than the pool). Rows need at least one candidate."""
    model.eval()
    spec = ranker(name).spec
    out: list[np.ndarray] = []
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        width = max(len(cand) for _, cand in part)
        inputs = stack(
            [
                ranker(name).inputs(store, ctx, np.concatenate([cand, np.full(width - len(cand), cand[0], np.int64)]))
                for ctx, cand in part
            ]
        )
        with torch.inference_mode():
            scores = model(*[torch.from_numpy(inputs[k]) for k in spec.input_names])[0].numpy()
        out += [scores[i, : len(cand)] for i, (_, cand) in enumerate(part)]
    return out


def score_prior(store: FeatureStore, user_ids, context=None) -> np.ndarray:
    """[len(user_ids), n_items]: the purchase-frequency prior (libs.features.frequency) of every item for each user;
    `context` as in score_catalogue."""
    items = np.arange(store.n_items)
    return (
        np.stack(
            [
                frequency_prior(store, context(str(u)) if context is not None else store.user_context(str(u)), items)
                for u in user_ids
            ]
        )
        if len(user_ids)
        else np.zeros((0, store.n_items))
    )


def store_for(
    train_purchases: pd.DataFrame,
    guest_sales: pd.DataFrame | None,
    item_emb: np.ndarray,
    cutoff: pd.Timestamp,
    product_ids=None,
) -> FeatureStore:
    return FeatureStore.build(train_purchases, item_emb, pd.Timestamp(cutoff), guest_sales, product_ids)
