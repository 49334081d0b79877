"""Name -> model factory: every registered Scorer becomes one row of `python -m training.evaluate`'s table.

To add a model (e.g. a ranker from training/models/):

    # training/models/scorers.py  (imported by `load_registry`, see PLUGIN_MODULES)
    from training.evaluate.registry import register

    register("gnn_ranker", lambda **params: MyGnnScorer(**params),
             grid={"dim": [32, 64]},             # optional: chosen on the validation split by NDCG@20
             description="GraphSAGE ranker")

The factory takes the grid's keyword arguments and returns an unfitted object meeting `protocol.Scorer`.
`Searcher`s for the search proxy register the same way with `register_searcher`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from training.evaluate.protocol import Scorer, Searcher

# Modules whose import registers models. Baselines first (table order = registration order); a plugin module that
# does not exist yet is skipped, any other import error is raised.
PLUGIN_MODULES: list[str] = [
    "training.evaluate.baselines",
    "training.evaluate.nbr_baselines",
    "training.models.scorers",
    "training.evaluate.served",
]


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable[..., Any]
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    description: str = ""
    group: str = "model"  # "baseline" rows are the ones a model is compared against (best baseline, bootstrap)


REGISTRY: dict[str, Entry] = {}
SEARCHERS: dict[str, Entry] = {}


def _add(table: dict[str, Entry], entry: Entry) -> None:
    if entry.name in table and table[entry.name].factory is not entry.factory:
        raise ValueError(f"model name {entry.name!r} is already registered")
    table[entry.name] = entry


def register(
    name: str,
    factory: Callable[..., Scorer],
    grid: Mapping[str, Sequence[Any]] | None = None,
    description: str = "",
    group: str = "model",
) -> None:
    """Register a Scorer factory under `name` (one table row); group "baseline" or "model"."""
    if group not in ("baseline", "model"):
        raise ValueError(f"group must be 'baseline' or 'model', got {group!r}")
    _add(REGISTRY, Entry(name, factory, dict(grid or {}), description, group))


def register_searcher(
    name: str,
    factory: Callable[..., Searcher],
    grid: Mapping[str, Sequence[Any]] | None = None,
    description: str = "",
) -> None:
    """Register a Searcher factory for the personalised-search proxy."""
    _add(SEARCHERS, Entry(name, factory, dict(grid or {}), description))


def load_registry() -> dict[str, Entry]:
    """Import the plugin modules (which register themselves) and return the Scorer registry."""
    for module in PLUGIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise  # the module exists but one of its own imports is missing: a real error
    return REGISTRY
