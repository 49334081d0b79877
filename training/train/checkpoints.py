"""Ranker checkpoints keyed by the training cut-off (artifacts/models/checkpoints/<name>-<YYYY-MM-DD>.pt)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from training.models.rankers import SeedEnsemble, new_module


def checkpoint_path(out_dir: Path, name: str, cutoff: pd.Timestamp) -> Path:
    return Path(out_dir) / "checkpoints" / f"{name}-{pd.Timestamp(cutoff):%Y-%m-%d}.pt"


def latest_checkpoint(out_dir: Path, name: str, not_after: pd.Timestamp) -> Path | None:
    """The checkpoint of `name` trained with the latest cut-off <= `not_after` (it saw nothing at or after it)."""
    best = None
    for path in sorted((Path(out_dir) / "checkpoints").glob(f"{name}-*.pt")):
        day = pd.Timestamp(path.stem[len(name) + 1 :])
        if day <= pd.Timestamp(not_after) and (best is None or day > best[0]):
            best = (day, path)
    return None if best is None else best[1]


def save_checkpoint(
    path: Path, model: torch.nn.Module, name: str, cutoff: pd.Timestamp, dataset: str, info: dict, n_windows: int
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    members = list(model.members) if isinstance(model, SeedEnsemble) else [model]
    states = [{k: v for k, v in m.state_dict().items() if k != "item_text"} for m in members]
    torch.save(
        {
            "name": name,
            "configs": [m.config for m in members],
            "states": states,
            "ensemble": isinstance(model, SeedEnsemble),
            "cutoff": str(pd.Timestamp(cutoff)),
            "dataset": dataset,
            "info": info,
            "n_windows": n_windows,
        },
        path,
    )


def load_checkpoint(path: Path, item_emb: np.ndarray | None = None) -> tuple[torch.nn.Module, dict]:
    """(model in eval mode, metadata); `item_emb` is passed to the ranker's module factory (tables it holds)."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    members = []
    for config, state in zip(blob["configs"], blob["states"]):
        model = new_module(blob["name"], config, item_emb)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or [m for m in missing if m != "item_text"]:
            raise RuntimeError(f"{path}: checkpoint does not match the model ({missing}, {unexpected})")
        members.append(model.eval())
    model = SeedEnsemble(members) if blob.get("ensemble") else members[0]
    return model.eval(), blob
