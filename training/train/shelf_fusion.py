"""Fusion weights per shelf (libs.fusion.Fusion.shelves), fitted on the validation split only, each by its shelf's
own objective as `make eval` scores it (training/evaluate/shelves.py), with the mixed list's normalisation:

- BUY_AGAIN: NDCG@20 on the window's repeat purchases, products the customer never bought ranked last;
- DISCOVER: NDCG@20 on the window's purchases of never-bought products, bought ones ranked last;
- FREQUENTLY_BOUGHT_TOGETHER: NDCG@10 leave-one-in over the window's invoices with >= 2 products, each product the
  context, candidates its FBT_CANDIDATES co-purchases (libs.shelves), averaged per invoice.

FOR_YOU keeps the mixed list's weights (they are fitted on its objective); SIMILAR_ITEMS too (no ground truth to fit
on). The grids are fit_fusion's: the rankers' weights over the simplex, then the prior's weight; ties go to the
mixed list's weights, then as in fit_fusion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from libs import domain as d
from libs.fusion import PRIOR, Fusion

SHELF_METRIC = {
    d.Shelf.BUY_AGAIN: "ndcg@20",
    d.Shelf.DISCOVER: "ndcg@20",
    d.Shelf.FREQUENTLY_BOUGHT_TOGETHER: "ndcg@10",
}


def fit_weights(
    base: Fusion, objective: Callable[[Fusion], float], models: Sequence[str], prior_grid: Sequence[float]
) -> tuple[dict[str, float], float, list[dict]]:
    """(best weights, its objective, every trial): the rankers' simplex first (prior at the mixed list's weight),
    then the prior's weight; a trial must beat the incumbent (the mixed list's weights first) to replace it."""
    from training.train.pipeline import weight_grid

    def value(weights: Mapping[str, float]) -> float:
        return float(objective(base.with_weights(weights)))

    best = dict(base.weights)
    best_value = value(best)
    trials = [{"weights": dict(best), "value": best_value}]
    prior = {PRIOR: base.weights[PRIOR]} if PRIOR in base.weights else {}
    for stage in ("rankers", "prior"):
        grid = (
            [w | prior for w in weight_grid(list(models))]
            if stage == "rankers"
            else ([{k: v for k, v in best.items() if k != PRIOR} | {PRIOR: w} for w in prior_grid] if prior else [])
        )
        for weights in grid:
            v = value(weights)
            trials.append({"weights": weights, "value": v})
            if v > best_value + 1e-12:
                best, best_value = weights, v
    return best, best_value, trials


def customer_objective(
    components: Mapping[str, np.ndarray], pools: np.ndarray, truth, eligible: np.ndarray, k: int = 20
) -> Callable[[Fusion], float]:
    """Mean NDCG@k of the fused scores over the customers with ground truth, ineligible products ranked last (a
    customer shelf: repeat purchases / never-bought purchases). training.evaluate.metrics.ndcg_at_k's NDCG (binary
    gains, ideal DCG capped at k, ties to the lower item index) in numpy: the grid evaluates it 30-odd times."""
    first = next(v for key, v in components.items() if key != PRIOR)
    relevant = np.asarray(truth.toarray(), bool)
    rows = np.flatnonzero(relevant.any(axis=1))
    relevant = relevant[rows]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)[np.minimum(relevant.sum(axis=1), k) - 1]
    parts = {key: v[rows] for key, v in components.items()}
    pools, eligible = pools[rows], eligible[rows]

    def objective(fusion: Fusion) -> float:
        fused = np.where(pools, fusion.combine(parts), first[rows])
        fused = np.where(eligible, fused, -np.inf)
        top = np.argsort(-fused, axis=1, kind="stable")[:, :k]
        gains = np.take_along_axis(relevant, top, axis=1) & np.take_along_axis(eligible, top, axis=1)
        return float(np.mean(gains @ discount[: top.shape[1]] / ideal)) if len(rows) else float("nan")

    return objective


def lists_objective(
    components: Sequence[Mapping[str, np.ndarray]],
    candidates: Sequence[np.ndarray],
    relevant: Sequence[np.ndarray],
    unit: np.ndarray,
    k: int = 10,
) -> Callable[[Fusion], float]:
    """Mean over units (invoices) of the mean NDCG@k of their lists: each list's candidates ordered by the fused
    score of its `components`, against its `relevant` items (training.evaluate.metrics.ranked_list_ndcg's NDCG:
    binary gains, the ideal DCG capped at k, relevant items outside the candidates count as missed), in numpy:
    the grid evaluates it 30-odd times over thousands of lists."""
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    gains = [np.isin(c, r).astype(np.float64) for c, r in zip(candidates, relevant)]
    ideal = np.array([discount[: min(len(r), k)].sum() for r in relevant])
    unit = np.asarray(unit)
    units, inverse = np.unique(unit, return_inverse=True)

    def objective(fusion: Fusion) -> float:
        dcg = np.array(
            [
                g[np.argsort(-fusion.combine(s), kind="stable")[:k]] @ discount[: min(len(g), k)]
                for s, g in zip(components, gains)
            ]
        )
        values = dcg / np.where(ideal > 0, ideal, 1.0)
        per_unit = np.bincount(inverse, values, len(units)) / np.bincount(inverse, minlength=len(units))
        return float(per_unit.mean()) if len(units) else float("nan")

    return objective


def fbt_components(models: Mapping, store, invoices, limit: int) -> tuple[list[dict], list, list, np.ndarray]:
    """Per (invoice, product) list of the frequently-bought-together shelf on validation: the components' scores
    (every ranker and the prior) of the context product's `limit` co-purchases, those candidates, the invoice's
    other products, and the invoice number of each list."""
    from libs.features.frequency import frequency_prior
    from libs.shelves import frequently_bought_together
    from training.train.trainer import score_lists

    rows, candidates, relevant, unit = [], [], [], []
    for u, (user, items) in enumerate(zip(invoices.users, invoices.items)):
        ctx = store.user_context(user)
        for item in items:
            cands = np.array([j for j, _ in frequently_bought_together(store.copurchase, [int(item)], limit)], np.int64)
            if len(cands):
                rows.append((ctx, cands))
                candidates.append(cands)
                relevant.append(items[items != item])
                unit.append(u)
    per_model = {name: score_lists(name, model, store, rows) for name, model in models.items()}
    components = [
        {name: values[q] for name, values in per_model.items()} | {PRIOR: frequency_prior(store, ctx, cands)}
        for q, (ctx, cands) in enumerate(rows)
    ]
    return components, candidates, relevant, np.asarray(unit, np.int64)


def fit_shelves(
    base: Fusion,
    components: Mapping[str, np.ndarray],
    pools: np.ndarray,
    validation,
    fbt: tuple[list[dict], list, list, np.ndarray] | None,
    prior_grid: Sequence[float],
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, dict]:
    """{shelf value: {"weights", "metric", "validation", "validation_mixed_weights"}} for BUY_AGAIN, DISCOVER and
    (with `fbt`, fbt_components' output) FREQUENTLY_BOUGHT_TOGETHER; `components`: the validation customers' scores
    per ranker and PRIOR over the catalogue, `pools` where the rankers scored."""
    history = validation.history.toarray().astype(bool)
    repeat = validation.truth.multiply(validation.history).tocsr()
    objectives = {
        d.Shelf.BUY_AGAIN: customer_objective(components, pools, repeat, history),
        d.Shelf.DISCOVER: customer_objective(
            components, pools, (validation.truth - repeat).tocsr().astype(bool), ~history
        ),
    }
    if fbt is not None:
        objectives[d.Shelf.FREQUENTLY_BOUGHT_TOGETHER] = lists_objective(*fbt)
    models = [m for m in base.weights if m != PRIOR]
    out = {}
    for shelf, objective in objectives.items():
        weights, value, trials = fit_weights(base, objective, models, prior_grid)
        out[shelf.value] = {
            "weights": weights,
            "metric": SHELF_METRIC[shelf],
            "validation": value,
            "validation_mixed_weights": trials[0]["value"],
        }
        mixed = trials[0]["value"]
        log(f"shelf {shelf.value}: {weights} validation {SHELF_METRIC[shelf]} {value:.4f} (mixed weights {mixed:.4f})")
    return out


def shelf_weights(
    fusion_blob: Mapping,
    models: Mapping,
    store,
    ds,
    validation,
    scores: Mapping[str, np.ndarray] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, dict]:
    """fit_shelves for rankers trained before the validation cut-off (`models`, their feature store `store` at that
    cut-off) and the mixed list's fusion (`fusion_blob`, fusion.json); `scores`: their validation scores per ranker
    and PRIOR when already computed (training.train.pipeline)."""
    from libs.shelves import FBT_CANDIDATES
    from training.evaluate.shelves import Invoices
    from training.train.pipeline import PRIOR_GRID
    from training.train.trainer import score_catalogue, score_prior

    if scores is None:
        scores = {name: score_catalogue(name, m, store, validation.users) for name, m in models.items()}
        scores = dict(scores) | {PRIOR: score_prior(store, validation.users)}
    pools = next(v for k, v in scores.items() if k != PRIOR) > -1.0e5
    fbt = fbt_components(models, store, Invoices.of(ds, validation), FBT_CANDIDATES)
    return fit_shelves(Fusion.from_dict(fusion_blob), scores, pools, validation, fbt, PRIOR_GRID, log)


def main(argv: Sequence[str] | None = None) -> int:
    """python -m training.train.shelf_fusion: fit the per-shelf weights for the trained rankers (their validation
    checkpoints), write them into artifacts/models/fusion.json and remake bundle 1 from it (training.bundles.adopt);
    `make models` does the same as part of training."""
    import argparse
    import json
    import sys

    from libs.catalog import load_dataset
    from libs.config import artifacts_dir, models_dir
    from libs.model_io import FUSION_FILE
    from training.bundles import adopt
    from training.evaluate.split import standard_splits
    from training.models.scorers import FusedScorer

    parser = argparse.ArgumentParser(prog="python -m training.train.shelf_fusion", description=main.__doc__)
    parser.add_argument("--no-adopt", action="store_true", help="only write fusion.json")
    args = parser.parse_args(argv)
    ds = load_dataset(artifacts_dir())
    validation, _ = standard_splits(ds)
    scorer = FusedScorer()
    scorer.fit(validation.train)
    parts = scorer.parts
    models = {name: part.model for name, part in parts.items()}
    store = next(iter(parts.values())).store
    path = models_dir() / FUSION_FILE
    blob = json.loads(path.read_text())
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    blob["shelves"] = shelf_weights(blob, models, store, ds, validation, log=log)
    path.write_text(json.dumps(blob, indent=2) + "\n")
    print(json.dumps(blob["shelves"], indent=2))
    if not args.no_adopt:
        print(f"bundle {adopt(artifacts_dir(), models_dir()).id}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
