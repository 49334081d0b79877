"""Scoring plumbing shared by ranking, explanation and offline evaluation: variants, candidate lookup, concurrent
ranker calls that degrade instead of failing, query encoding that degrades to "no query"."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from libs import domain as d
from libs.errors import DeadlineError, FieldViolation, InvalidArgumentError, UnavailableError, invalid
from libs.features import FeatureStore, Pop, UserContext
from libs.features.fresh import NewProductRows
from libs.features.frequency import frequency_prior
from libs.fusion import PRIOR, Fusion
from libs.model_io import CAND_NBR_IDS, CAND_NBR_MASK, CAND_NBR_WEIGHT, POP_FEATS, SCORE
from libs.rankers import get as ranker
from libs.rankers import variants

Infer = Callable[[str, Mapping[str, np.ndarray], Sequence[str], float], Awaitable[dict[str, np.ndarray]]]
# product_id -> the titles of those products newer than the bundle that the catalogue has (libs.products.view).
NewTitles = Callable[[Sequence[str]], Awaitable[dict[str, str]]]
# The recorded-purchase signals of products newer than the bundle, per candidate (libs.fresh_signals).
NewSignals = Callable[[Sequence[str], pd.Index], NewProductRows]
EncodeQuery = Callable[[Sequence[str], float], Awaitable[np.ndarray]]
Versions = Callable[[str], Awaitable[str]]


EXPLORE = "+explore="  # variant suffix of the repeat-vs-explore setting, e.g. "fused+explore=0.3"
# Variant suffix naming the shelf whose fusion weights score (libs.fusion.Fusion.for_shelf), e.g.
# "fused+shelf=DISCOVER": the gateway adds it to what it asks ranking and explanation for (shelf_variant), so both
# fuse alike; the experiment arm (attribution token, events) stays the variant without it.
SHELF = "+shelf="


@dataclass(frozen=True)
class Arm:
    """What a ranking variant (experiment arm) serves: the rankers whose fused score orders the results, and the
    repeat-vs-explore setting in [0, 1] (libs.fusion.Fusion.discovery; 0 = the balance the rankers learned)."""

    models: tuple[str, ...]
    explore: float = 0.0
    shelf: str = ""  # libs.domain.Shelf value whose fusion weights score; "" = the mixed list's


def arm_of(variant: str) -> Arm:
    """ "" = "fused"; a model arm ("fused", "gnn_only", ...) optionally followed by "+explore=<0..1>", then
    optionally by "+shelf=<SHELF>" (a libs.domain.Shelf value)."""
    variant, has_shelf, shelf = (variant or "fused").partition(SHELF)
    if has_shelf and shelf not in {s.value for s in d.Shelf}:
        raise invalid("variant", f"unknown shelf {shelf!r}; one of {', '.join(s.value for s in d.Shelf)}")
    name, suffix, level = (variant or "fused").partition(EXPLORE)
    arms = variants()
    models = arms.get(name)
    if models is None:
        raise invalid(
            "variant", f"unknown variant {variant!r}; one of {', '.join(arms)}, optionally followed by {EXPLORE}<0..1>"
        )
    if not suffix:
        return Arm(models, 0.0, shelf)
    try:
        explore = float(level)
    except ValueError:
        explore = math.nan
    if not 0.0 <= explore <= 1.0:  # NaN fails too
        raise invalid("variant", f"explore setting {level!r} of {variant!r} must be a number in [0, 1]")
    return Arm(models, explore, shelf)


def shelf_variant(variant: str, shelf: d.Shelf | None) -> str:
    """What ranking and explanation are asked for on a shelf: the variant with "+shelf=<SHELF>" (None, FOR_YOU:
    the variant as it is)."""
    return variant if shelf in (None, d.Shelf.FOR_YOU) else f"{variant or 'fused'}{SHELF}{shelf.value}"


def experiment_variant(variant: str) -> str:
    """The experiment arm of a variant (without its shelf suffix): what clients and events see."""
    return variant.partition(SHELF)[0]


def models_of(variant: str) -> tuple[str, ...]:
    """The rankers whose fused score orders the results of a variant (experiment arm); "" = "fused"."""
    return arm_of(variant).models


def prior_scores(fusion: Fusion, store: FeatureStore, ctx: UserContext, cand_idx: np.ndarray) -> dict[str, np.ndarray]:
    """{PRIOR: the candidates' purchase-frequency prior} when the fusion blends it in, else {}: what ranking and
    explanation add to the rankers' scores before Fusion.combine."""
    return {PRIOR: frequency_prior(store, ctx, cand_idx)} if fusion.weights.get(PRIOR) else {}


@dataclass(frozen=True)
class Candidates:
    """Candidates resolved against the bundle: item index, or -1 for a catalogue product newer than the bundle,
    which the rankers score from its title embedding (`new_emb`, rows of the others zero)."""

    idx: np.ndarray
    titles: list[str]
    new_emb: np.ndarray | None = None
    new_rows: NewProductRows | None = None  # their recorded purchases' popularity and co-purchase neighbours

    def with_new_signals(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return with_new_signals(inputs, self.idx, self.new_rows)


def with_new_signals(
    inputs: dict[str, np.ndarray], cand_idx: np.ndarray, rows: NewProductRows | None
) -> dict[str, np.ndarray]:
    """One scenario's ranker inputs (libs/rankers/, before masking) with the rows of the products newer than the
    bundle (cand_idx < 0) filled with their recorded purchases' popularity and co-purchase neighbours (the input
    builders leave them empty)."""
    if rows is None:
        return inputs
    new = np.flatnonzero(np.asarray(cand_idx) < 0)
    out = dict(inputs)
    if POP_FEATS in out:
        pop = out[POP_FEATS].copy()
        # The similar-customers column stays as built (0: no similar customer's vector holds a new product).
        columns = [c for c in range(pop.shape[-1]) if c != Pop.LOG_SIMILAR_CUSTOMERS_SCORE]
        pop[0][np.ix_(new, columns)] = rows.pop[np.ix_(new, columns)]
        out[POP_FEATS] = pop
    if CAND_NBR_IDS in out:
        ids, weight = out[CAND_NBR_IDS].copy(), out[CAND_NBR_WEIGHT].copy()
        ids[0, new], weight[0, new] = rows.nbr_ids[new], rows.nbr_weight[new]
        out[CAND_NBR_IDS], out[CAND_NBR_WEIGHT] = ids, weight
        out[CAND_NBR_MASK] = (ids > 0).astype(np.float32)
    return out


async def resolve_candidates(
    store: FeatureStore,
    titles: Sequence[str],
    product_ids: Sequence[str],
    new_titles: NewTitles | None,
    encode: EncodeQuery,
    timeout: float,
    field: str = "product_ids",
    new_signals: NewSignals | None = None,
) -> Candidates:
    """INVALID_ARGUMENT names ids neither the bundle nor the catalogue knows. New products' titles are embedded by
    `encode` (UnavailableError/DeadlineError when it cannot); `new_signals` gives their recorded purchases' rows."""
    idx = store.item_index.get_indexer(list(product_ids)).astype(np.int64)
    unknown = [product_ids[i] for i in np.flatnonzero(idx < 0)]
    found = await new_titles(unknown) if unknown and new_titles is not None else {}
    bad = [
        FieldViolation(f"{field}[{i}]", "is not a product of the catalogue")
        for i in np.flatnonzero(idx < 0)
        if product_ids[i] not in found
    ][:10]
    if bad:
        raise InvalidArgumentError(bad)
    names = [titles[i] if i >= 0 else found[p] for i, p in zip(idx, product_ids)]
    if not unknown:
        return Candidates(idx, names)
    new = np.flatnonzero(idx < 0)
    try:
        emb = await asyncio.wait_for(encode([names[i] for i in new], timeout), timeout)
    except asyncio.TimeoutError as exc:
        raise DeadlineError("text_encoder: new products' titles not embedded in time") from exc
    new_emb = np.zeros((len(idx), np.shape(emb)[1]), np.float32)
    new_emb[new] = emb
    rows = new_signals(list(product_ids), store.item_index) if new_signals is not None else None
    return Candidates(idx, names, new_emb, rows)


async def encode_or_degrade(
    encode: EncodeQuery, texts: Sequence[str], timeout: float, degradations: list[d.Degradation]
) -> np.ndarray | None:
    """Query embeddings, or None (and a TEXT_ENCODER degradation) when the encoder is down or late."""
    try:
        return await asyncio.wait_for(encode(texts, timeout), timeout)
    except (UnavailableError, DeadlineError, asyncio.TimeoutError) as exc:
        degradations.append(d.Degradation(d.Stage.TEXT_ENCODER, str(exc) or "deadline"))
        return None


async def run_models(
    infer: Infer, inputs: Mapping[str, Mapping[str, np.ndarray]], timeout: float, degradations: list[d.Degradation]
) -> dict[str, np.ndarray]:
    """Call every model concurrently; scores [B, C] of those that answered in time, degradations for the rest."""

    async def one(model: str) -> np.ndarray:
        # What travels is the served form's input: ids where the model holds the title table (libs/rankers/wire.py).
        out = await asyncio.wait_for(infer(model, ranker(model).to_wire(inputs[model]), [SCORE], timeout), timeout)
        return out[SCORE]

    results = await asyncio.gather(*(one(m) for m in inputs), return_exceptions=True)
    scores: dict[str, np.ndarray] = {}
    for model, result in zip(inputs, results):
        if isinstance(result, (UnavailableError, DeadlineError, asyncio.TimeoutError)):
            degradations.append(d.Degradation(d.Stage.RANKING, str(result) or "deadline", model))
        elif isinstance(result, BaseException):
            raise result
        else:
            scores[model] = result
    return scores
