"""The ranker registry: every ranker the system trains, exports, serves and explains is declared once, as a `Ranker`
in its own module (libs/rankers/<name>.py); training, export, Triton configs, ranking, explanation and evaluation
iterate `rankers()` instead of naming models. Adding a ranker = one new module + one line in libs/rankers/__init__.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from libs.model_io import ModelSpec
from libs.rankers.wire import served_spec, to_wire

# (store, ctx, cand_idx, query_emb | None, new_cand_emb | None) -> the model's inputs for one scenario (B = 1).
InputBuilder = Callable[..., dict[str, np.ndarray]]


@dataclass(frozen=True)
class Ranker:
    spec: ModelSpec
    inputs: InputBuilder
    # The PyTorch module class as "package.module:Class", resolved only in training (training.models.rankers), so
    # serving never imports torch. `Class.from_config(config, item_emb [n_items, 384])` builds a fresh module whose
    # forward takes spec.input_names in order.
    module: str
    # (item id tensor, mask tensor) pairs holding the user's history: masking a past purchase zeroes its slots.
    history_slots: tuple[tuple[str, str], ...] = ()
    reads_query: bool = False  # trained with title-derived queries; gets the query embedding at serving
    # (embedding input, ids input) pairs the served model looks up in the title table it holds: only the ids
    # travel to Triton (libs/rankers/wire.py).
    gathered: tuple[tuple[str, str], ...] = ()
    parity_tolerance: float = 1e-4  # ONNX vs PyTorch, max abs diff
    trt_tolerance: float = 5e-2  # FP16 TensorRT engine vs PyTorch
    description: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def served_spec(self) -> ModelSpec:
        """What the exported model (ONNX / TensorRT / Triton config) reads: `spec` with the gathered embeddings
        replaced by their ids (libs/rankers/wire.py). `spec` is what the trained PyTorch module reads."""
        return served_spec(self.spec, self.gathered)

    def to_wire(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """This ranker's inputs (from `inputs`, masked or not) -> the request the served model reads."""
        return to_wire(inputs, self.gathered)

    @property
    def variant(self) -> str:
        """The experiment arm that ranks by this model alone, e.g. gnn_ranker -> "gnn_only"."""
        return self.name.removesuffix("_ranker") + "_only"


_REGISTRY: dict[str, Ranker] = {}


def register(ranker: Ranker) -> Ranker:
    if ranker.name in _REGISTRY and _REGISTRY[ranker.name] is not ranker:
        raise ValueError(f"ranker {ranker.name!r} is registered already")
    _REGISTRY[ranker.name] = ranker
    return ranker


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def rankers() -> tuple[Ranker, ...]:
    return tuple(_REGISTRY.values())


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get(name: str) -> Ranker:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown ranker {name!r}; registered: {', '.join(_REGISTRY) or 'none'}") from None


def specs() -> dict[str, ModelSpec]:
    """Every served model's spec (what Triton and the exported files read): the text encoder and each ranker's
    served form."""
    from libs.model_io import TEXT_ENCODER_SPEC

    return {TEXT_ENCODER_SPEC.name: TEXT_ENCODER_SPEC} | {r.name: r.served_spec for r in rankers()}


def variants() -> dict[str, tuple[str, ...]]:
    """Ranking variants (experiment arms) -> the models whose fused score orders the results."""
    return {"fused": names()} | {r.variant: (r.name,) for r in rankers()}
