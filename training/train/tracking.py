"""Experiment tracking: every training run writes TensorBoard event files under runs/ (git-ignored; `make
tensorboard` serves them), and the bundle it makes names the run (manifest key "run").

Layout: runs/<run>/<member>/events.out.tfevents.*, one folder per trained member (ranker, seed, cut-off), with the
scalars per epoch:

- LOSS: the mean training loss (listwise softmax) of the epoch;
- VALIDATION_NDCG: the member's own NDCG@20 on the validation window (full-catalogue protocol, before fusion),
  logged only where the member did not train on that window (training.train.pipeline: the validation cut-off).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

RUNS_DIR = Path(__file__).resolve().parents[2] / "runs"
LOSS = "loss/train"
VALIDATION_NDCG = "ndcg20/validation"

# (ranker name, model in eval mode) -> validation NDCG@20; called after every epoch in the training process.
Validate = Callable[[str, object], float]


def new_run(prefix: str = "train") -> str:
    """A run's name: what made it and when (UTC), e.g. train-20261206T231500Z; sorts by time."""
    return f"{prefix}-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"


def member_dir(runs: Path, run: str, desc: str) -> Path:
    """runs/<run>/<member>: the member's description (e.g. 'gnn_ranker seed 1 < 2011-11-25') as a folder name."""
    return Path(runs) / run / re.sub(r"[^A-Za-z0-9_.-]+", "_", desc).strip("_")


class EpochLog:
    """A member's scalars per epoch to its TensorBoard folder (no-op without a folder)."""

    def __init__(self, log_dir: Path | None) -> None:
        self.writer = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(log_dir))

    def epoch(self, epoch: int, values: dict[str, float]) -> None:
        if self.writer is None:
            return
        for tag, value in values.items():
            if value is not None and np.isfinite(value):
                self.writer.add_scalar(tag, float(value), epoch)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(epoch, value)] of the event files in `log_dir` (tests, and reading a run back)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
