"""Evaluation per shelf (libs/shelves.py), each against its own baselines, on the test split; every hyper-parameter
(baselines' and the frequently-bought-together candidate count) chosen on the validation split by the shelf's own
NDCG.

- Buy it again: ground truth = the window's purchases of products the customer bought before the cut-off; every
  model ranks only those products. Baselines: GP-TopFreq's repeat part (personal invoice count), TIFU-KNN's repeat
  part (its own-history term, alpha = 1), a repurchase-cycle baseline. NDCG@20.
- Discover: ground truth = the window's purchases of products the customer never bought; every model ranks only
  those. Baselines: popularity, recency-weighted popularity, user-kNN (TIFU-KNN's neighbour term: alpha = 0),
  item-kNN with P(j | i) over the customer's history, co-purchase of the customer's most recent baskets. NDCG@20.
- Frequently bought together: every window invoice of an evaluated customer with >= 2 products; each product in
  turn is the context, the invoice's other products the ground truth (leave-one-in), averaged per invoice (the
  bootstrap's unit). Baselines: co-occurrence counts, lift (count / (orders of j + beta)), popularity. NDCG@10.
  The shelf: the FBT_CANDIDATES-style top-N co-purchases ordered by the fused rankers for the invoice's customer.
- Similar items (a proxy: no purchase ground truth, SIMILAR_NOTE): test-window substitutions, i.e. a customer's
  new product of the type noun of one they bought before and did not buy again; the shelf on the old product's page
  should show the new one (NDCG@10, hit rate@10, recall@10) and products of its type (same_type@10). Baselines:
  title-embedding kNN (the shelf's candidates in their own order), same-type popularity.

The served shelves' models are the fused rankers (training.models.scorers.FusedScorer) with each shelf's own
fusion weights (libs.fusion.Fusion.for_shelf, fitted on validation by training.train.shelf_fusion; similar items:
the mixed list's); MIXED_WEIGHTS rows show the mixed list's weights for reference. Metrics come from
training.evaluate.metrics (torchmetrics, ideal DCG capped at K) and intervals from
training.evaluate.stats.paired_bootstrap, against each shelf's best baseline by test NDCG.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from libs.catalog import Dataset
from libs.catalog.prepare import copurchase_matrix
from libs.features import item_repurchase_cycle
from libs import domain as d
from libs.fusion import PRIOR, Fusion
from libs.scoring import shelf_variant
from libs.shelves import frequently_bought_together
from training.evaluate.baselines import ItemKNN, Popularity, lexicographic, recent_popularity, user_rows
from training.evaluate.metrics import per_user_metrics, rank_scores, ranked_list_ndcg, ranking_order
from training.evaluate.nbr_baselines import GPTopFreq, TifuKNN
from training.evaluate.run import SEED, grid_points, seed_everything
from training.evaluate.split import Split, TrainData
from training.evaluate.stats import paired_bootstrap

DAY = 86400.0
FBT_K, FBT_RECALL_K = 10, 20
FBT_CANDIDATE_GRID = (10, 20, 50, 100)  # the shelf's co-purchase candidates (libs.shelves.FBT_CANDIDATES)
SERVED = "fused_rankers"
FBT_SHELF, SIMILAR_SHELF = d.Shelf.FREQUENTLY_BOUGHT_TOGETHER.value, d.Shelf.SIMILAR_ITEMS.value
# The served model with the mixed list's fusion weights instead of the shelf's own (what the shelves served before
# per-shelf weights): shown for reference, neither a baseline nor compared.
MIXED_WEIGHTS = "fused_rankers_mixed_weights"


# ------------------------------------------------------------------------------------------------------ baselines
class RepurchaseCycle:
    """Buy it again by repurchase cycle: for each product the customer bought, how close the time since their last
    purchase of it is to its usual interval (their own median gap when they bought it at 2+ times, else the
    product's median gap over customers, libs.features.item_repurchase_cycle), times their invoice count of it:
    count x exp(-|log((age + 1) / (cycle + 1))|). Ties by popularity."""

    def fit(self, train: TrainData) -> None:
        self.train = train
        self.popularity = recent_popularity(train)
        p = train.purchases
        self.cycle = item_repurchase_cycle(
            p["user_id"].to_numpy(), p["item_idx"].to_numpy(), p["ts"].astype("int64").to_numpy() / 1e9, train.n_items
        )
        self.default_cycle = float(np.nanmedian(self.cycle)) if np.isfinite(self.cycle).any() else 30.0

    def score(self, user_ids: Sequence[str]) -> np.ndarray:
        mine, _ = user_rows(self.train, user_ids)
        out = np.zeros((len(user_ids), self.train.n_items))
        if len(mine):
            mine = mine.assign(t=mine["ts"].astype("int64") / 1e9)
            g = mine.groupby(["row", "item_idx"])["t"]
            stats = pd.DataFrame({"count": g.nunique(), "last": g.max(), "first": g.min()}).reset_index()
            own = (stats["last"] - stats["first"]) / DAY / np.maximum(stats["count"] - 1, 1)
            pooled = self.cycle[stats["item_idx"].to_numpy()]
            cycle = np.where(stats["count"] >= 2, own, np.where(np.isfinite(pooled), pooled, self.default_cycle))
            age = (self.train.cutoff.value / 1e9 - stats["last"].to_numpy()) / DAY
            due = np.exp(-np.abs(np.log((age + 1.0) / (np.maximum(cycle, 1.0) + 1.0))))
            out[stats["row"].to_numpy(), stats["item_idx"].to_numpy()] = stats["count"].to_numpy() * due
        return lexicographic(out, self.popularity)


class RecencyPopularity:
    """Popularity where an order `age` days before the cut-off weighs 0.5 ** (age / half_life) (guests included)."""

    def __init__(self, half_life_days: float = 14.0) -> None:
        self.half_life_days = half_life_days

    def fit(self, train: TrainData) -> None:
        columns = ["item_idx", "ts"]
        sales = pd.concat([train.purchases[columns], train.guest_sales[columns]])
        age = (train.cutoff - sales["ts"]).dt.total_seconds().to_numpy() / DAY
        self.scores = np.bincount(
            sales["item_idx"].to_numpy(), weights=np.power(0.5, age / self.half_life_days), minlength=train.n_items
        ).astype(np.float32)

    def score(self, user_ids: Sequence[str]) -> np.ndarray:
        return np.tile(self.scores, (len(user_ids), 1))


class ConditionalItemKNN(ItemKNN):
    """Item-kNN with conditional probability: P(j | i) = customers who bought i and j / customers who bought i; a
    customer's score for j = the sum over the products i they bought (Deshpande & Karypis 2004's asymmetric form)."""

    def fit(self, train: TrainData) -> None:
        super().fit(train)
        both = (self.user_items.T @ self.user_items).toarray().astype(np.float32)
        bought = np.maximum(np.diag(both).copy(), 1.0)
        np.fill_diagonal(both, 0.0)
        self.similarity = both / bought[:, None]


class RecentCoPurchase:
    """Co-purchase of recent items: the invoices shared (libs.catalog.prepare.copurchase_matrix, guests included)
    with each product of the customer's `baskets` most recent invoices, summed. Ties by popularity."""

    def __init__(self, baskets: int = 1) -> None:
        self.baskets = baskets

    def fit(self, train: TrainData) -> None:
        self.train = train
        self.popularity = recent_popularity(train)
        self.copurchase = copurchase_matrix(pd.concat([train.purchases, train.guest_sales]), train.n_items)

    def score(self, user_ids: Sequence[str]) -> np.ndarray:
        mine, _ = user_rows(self.train, user_ids)
        recent = mine.groupby(["row", "invoice_no"])["ts"].max().reset_index()
        recent = recent.sort_values("ts", ascending=False).groupby("row").head(self.baskets)
        mine = mine.merge(recent[["row", "invoice_no"]], on=["row", "invoice_no"])
        pairs = mine[["row", "item_idx"]].drop_duplicates()
        basket = sp.csr_matrix(
            (np.ones(len(pairs)), (pairs["row"].to_numpy(), pairs["item_idx"].to_numpy())),
            shape=(len(user_ids), self.train.n_items),
        )
        return lexicographic((basket @ self.copurchase).toarray(), self.popularity)


# ------------------------------------------------------------------------------------------------------ shelves
@dataclass(frozen=True)
class Candidate:
    """A model of one shelf: a factory of scorers (fit/score as training.evaluate.protocol.Scorer) and its grid."""

    name: str
    factory: Callable[..., Any]
    grid: dict[str, list[Any]]
    description: str
    group: str = "baseline"


BUY_AGAIN = (
    Candidate("gp_topfreq_repeat", GPTopFreq, {}, "GP-TopFreq's repeat part: the customer's invoice count"),
    Candidate(
        "tifu_knn_repeat",
        lambda **p: TifuKNN(alpha=1.0, **p),
        {"r_b": [0.9, 1.0], "r_g": [0.6, 1.0], "m": [1, 3, 7]},
        "TIFU-KNN's repeat part: basket- and group-decayed own history (alpha = 1)",
    ),
    Candidate("repurchase_cycle", RepurchaseCycle, {}, "invoice count x closeness to the repurchase cycle"),
)
DISCOVER = (
    Candidate("popularity", Popularity, {"window_days": [7, 14, 28]}, "orders in the last window_days"),
    Candidate(
        "recency_popularity",
        RecencyPopularity,
        {"half_life_days": [7, 30, 90]},
        "orders weighted 0.5 ** (age / half_life)",
    ),
    Candidate(
        "user_knn",
        lambda **p: TifuKNN(alpha=0.0, **p),
        {"k": [100, 300], "m": [1, 7]},
        "TIFU-KNN's neighbour part: mean of the k nearest customers' vectors",
    ),
    Candidate("itemknn_conditional", ConditionalItemKNN, {}, "sum of P(j | i) over the customer's products"),
    Candidate(
        "recent_copurchase",
        RecentCoPurchase,
        {"baskets": [1, 3, 10]},
        "invoices shared with the products of the customer's last `baskets` invoices",
    ),
)


def restricted(scores: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """The scores' ranking with every ineligible item below every eligible one (what a shelf can show)."""
    return np.where(eligible, rank_scores(ranking_order(scores)), 0.0).astype(np.float32)


def _shelf_truth(split: Split, shelf: str) -> tuple[sp.csr_matrix, np.ndarray]:
    """(ground truth, eligible items) of a customer shelf: repeat purchases and history, or the rest."""
    history = split.history.toarray().astype(bool)
    repeat = split.truth.multiply(split.history).tocsr()
    if shelf == "buy_again":
        return repeat, history
    return (split.truth - repeat).tocsr().astype(bool), ~history


def _per_user(scores: np.ndarray, split: Split, shelf: str) -> pd.DataFrame:
    truth, eligible = _shelf_truth(split, shelf)
    return per_user_metrics(restricted(scores, eligible), truth)


def _fit_score(candidate: Candidate, params: dict, split: Split) -> np.ndarray:
    seed_everything(SEED)  # as training.evaluate.run fits its rows
    scorer = candidate.factory(**params)
    scorer.fit(split.train)
    return np.asarray(scorer.score(list(split.users)))


def _tuned(candidate: Candidate, validation: Split, shelf: str) -> tuple[dict, list[dict]]:
    trials = []
    for params in grid_points(candidate.grid):
        value = float(np.nanmean(_per_user(_fit_score(candidate, params, validation), validation, shelf)["ndcg@20"]))
        trials.append({"params": params, "ndcg@20": round(value, 6)})
    return max(trials, key=lambda t: t["ndcg@20"])["params"], trials


def _summary(per: pd.DataFrame, metrics: Sequence[str]) -> dict[str, float]:
    return {m: round(float(np.nanmean(per[m])), 6) for m in metrics} | {"units": int(per[metrics[0]].notna().sum())}


def _compare(rows: list[dict], values: dict[str, np.ndarray], metric: str) -> dict:
    best = max((r for r in rows if r["group"] == "baseline"), key=lambda r: r["metrics"][metric])
    result = paired_bootstrap(values[SERVED], values[best["model"]])
    return {
        "model": SERVED,
        "baseline": best["model"],
        "metric": metric,
        **{k: round(v, 6) if isinstance(v, float) else v for k, v in result.items()},
    }


def customer_shelf(
    shelf: str,
    candidates: Sequence[Candidate],
    validation: Split,
    test: Split,
    served_scores: np.ndarray,
    log: Callable[[str], None],
    mixed_scores: np.ndarray | None = None,
) -> dict:
    """One customer shelf: its baselines tuned on validation, then every model on test, and the comparison;
    `served_scores` with the shelf's fusion weights, `mixed_scores` (reference row) with the mixed list's."""
    rows, values = [], {}
    metrics = ("ndcg@20", "recall@20", "hit_rate@10")
    for candidate in candidates:
        params, trials = _tuned(candidate, validation, shelf) if candidate.grid else ({}, [])
        per = _per_user(_fit_score(candidate, params, test), test, shelf)
        values[candidate.name] = per["ndcg@20"].to_numpy()
        rows.append(
            {
                "model": candidate.name,
                "description": candidate.description,
                "group": candidate.group,
                "params": params,
                "validation": trials,
                "metrics": _summary(per, metrics),
            }
        )
        log(f"  {shelf} {candidate.name} {params} test ndcg@20={rows[-1]['metrics']['ndcg@20']:.4f}")
    served = [
        (SERVED, "the shelf as served: its candidates ordered by the fused rankers, the shelf's weights", served_scores)
    ]
    if mixed_scores is not None:
        served.append((MIXED_WEIGHTS, "the same with the mixed list's fusion weights (reference)", mixed_scores))
    for name, description, scores in served:
        per = _per_user(scores, test, shelf)
        values[name] = per["ndcg@20"].to_numpy()
        rows.append(
            {
                "model": name,
                "description": description,
                "group": "served" if name == SERVED else "reference",
                "params": {},
                "validation": [],
                "metrics": _summary(per, metrics),
            }
        )
        log(f"  {shelf} {name} test ndcg@20={rows[-1]['metrics']['ndcg@20']:.4f}")
    return {"shelf": shelf, "metric": "ndcg@20", "models": rows, "comparison": _compare(rows, values, "ndcg@20")}


# ------------------------------------------------------------------------------------------------------ FBT
@dataclass(frozen=True)
class Invoices:
    """A split's window invoices of evaluated customers with >= 2 distinct products."""

    users: list[str]
    items: list[np.ndarray]

    @classmethod
    def of(cls, ds: Dataset, split: Split) -> "Invoices":
        p = ds.purchases
        window = p[(p["ts"] >= split.cutoff) & (p["ts"] < split.window_end) & p["user_id"].isin(set(split.users))]
        users, items = [], []
        for (user, _), lines in window.groupby(["user_id", "invoice_no"], sort=True):
            distinct = np.unique(lines["item_idx"].to_numpy()).astype(np.int64)
            if len(distinct) >= 2:
                users.append(str(user))
                items.append(distinct)
        return cls(users, items)


def _list_metrics(ranked: np.ndarray, relevant: np.ndarray) -> tuple[float, float, float]:
    """(NDCG@10, recall@20, hit rate@10) of one ranked list."""
    hits = np.isin(ranked, relevant)
    return (
        ranked_list_ndcg(ranked, relevant, FBT_K),
        float(hits[:FBT_RECALL_K].sum() / len(relevant)),
        float(hits[:FBT_K].any()),
    )


def _invoice_metrics(invoices: Invoices, rank: Callable[[int, str, int], np.ndarray]) -> pd.DataFrame:
    """Per invoice: the mean over its products (each the context, the rest relevant) of the list metrics;
    `rank(row, user, context item)` gives the ranked list."""
    rows = []
    for row, (user, items) in enumerate(zip(invoices.users, invoices.items)):
        per = [_list_metrics(rank(row, user, int(i)), items[items != i]) for i in items]
        rows.append(dict(zip(("ndcg@10", "recall@20", "hit_rate@10"), np.mean(per, axis=0))))
    return pd.DataFrame(rows)


def _count_ranker(train: TrainData, beta: float | None) -> Callable[[int, str, int], np.ndarray]:
    """Co-occurrence counts (beta None), or lift count / (orders of j + beta), then popularity; never the context."""
    sales = pd.concat([train.purchases, train.guest_sales])
    copurchase = copurchase_matrix(sales, train.n_items)
    popularity = recent_popularity(train)
    orders = np.bincount(
        sales.drop_duplicates(["invoice_no", "item_idx"])["item_idx"].to_numpy(), minlength=train.n_items
    ).astype(np.float64)

    def rank(_row: int, _user: str, item: int) -> np.ndarray:
        counts = copurchase[item].toarray().ravel().astype(np.float64)
        primary = counts if beta is None else counts / (orders + beta)
        order = np.lexsort((-popularity, -primary))
        return order[order != item][:FBT_RECALL_K]

    return rank


def _store(fused: Any):
    """The feature store the fused rankers of a split read (training.models.scorers.FusedScorer)."""
    return next(iter(fused.parts.values())).store


def list_components(fused: Any, rows: Sequence[tuple[Any, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """Each (user context, candidate items) row's scores per ranker and the prior (PRIOR), what Fusion.combine
    fuses as ranking does; rows need at least one candidate."""
    from libs.features.frequency import frequency_prior
    from training.train.trainer import score_lists

    store = _store(fused)
    per_model = {name: score_lists(name, part.model, part.store, rows) for name, part in fused.parts.items()}
    return [
        {name: values[q] for name, values in per_model.items()} | {PRIOR: frequency_prior(store, ctx, cands)}
        for q, (ctx, cands) in enumerate(rows)
    ]


def _popularity_ranker(train: TrainData) -> Callable[[int, str, int], np.ndarray]:
    order = np.argsort(-recent_popularity(train), kind="stable")
    return lambda _row, _user, item: order[order != item][:FBT_RECALL_K]


class FusedShelf:
    """The frequently-bought-together shelf as served: the top-n co-purchases of the context product
    (libs.shelves.frequently_bought_together over the feature store), ordered by the fused rankers' score for the
    invoice's customer (libs.fusion, prior included). Scored once for the largest n; a smaller n keeps the first n
    co-purchases; `fusion` (the shelf's, or the mixed list's) is applied per ranker."""

    def __init__(self, fused: Any, invoices: Invoices, n_max: int) -> None:
        store = _store(fused)
        queries, self.scored = [], {}
        for row, (user, items) in enumerate(zip(invoices.users, invoices.items)):
            ctx = store.user_context(user)
            for item in items:
                together = frequently_bought_together(store.copurchase, [int(item)], n_max)
                cands = np.array([j for j, _ in together], np.int64)
                self.scored[(row, int(item))] = (cands, {})
                if len(cands):
                    queries.append(((row, int(item)), ctx, cands))
        for (key, _, cands), values in zip(queries, list_components(fused, [(c, x) for _, c, x in queries])):
            self.scored[key] = (cands, values)

    def ranker(self, n: int, fusion: Fusion) -> Callable[[int, str, int], np.ndarray]:
        def rank(row: int, _user: str, item: int) -> np.ndarray:
            cands, components = self.scored[(row, item)]
            if not len(cands):
                return cands
            fused = fusion.combine({k: v[:n] for k, v in components.items()})
            return cands[:n][np.argsort(-fused, kind="stable")][:FBT_RECALL_K]

        return rank


def fbt_shelf(
    ds: Dataset, validation: Split, test: Split, fused: dict[str, Any], log: Callable[[str], None]
) -> tuple[dict, Callable[[int, str, int], np.ndarray], Invoices]:
    """Frequently bought together: baselines and the shelf's candidate count tuned on validation NDCG@10; also the
    test shelf's ranker as evaluated and the test invoices (for the served-path check)."""
    metrics = ("ndcg@10", "recall@20", "hit_rate@10")
    invoices = {"validation": Invoices.of(ds, validation), "test": Invoices.of(ds, test)}
    shelves = {name: FusedShelf(fused[name], invoices[name], max(FBT_CANDIDATE_GRID)) for name in invoices}
    splits = {"validation": validation, "test": test}
    own = {name: fused[name].fusion.for_shelf(FBT_SHELF) for name in invoices}

    def value(name: str, make: Callable[[TrainData], Callable], split: str) -> pd.DataFrame:
        return _invoice_metrics(
            invoices[split], make(split) if name in (SERVED, MIXED_WEIGHTS) else make(splits[split].train)
        )

    models = [
        (
            "cooccurrence",
            "invoices shared with the context product, then popularity",
            {},
            lambda p: lambda train: _count_ranker(train, None),
        ),
        (
            "lift",
            "shared invoices / (orders of the product + beta), then popularity",
            {"beta": [1, 10, 100]},
            lambda p: lambda train: _count_ranker(train, float(p["beta"])),
        ),
        ("popularity", "orders in the last 28 days", {}, lambda p: lambda train: _popularity_ranker(train)),
        (
            SERVED,
            "the shelf as served: its top-n co-purchases ordered by the fused rankers, the shelf's weights",
            {"candidates": list(FBT_CANDIDATE_GRID)},
            lambda p: lambda split: shelves[split].ranker(p["candidates"], own[split]),
        ),
        (
            MIXED_WEIGHTS,
            "the same with the mixed list's fusion weights (reference)",
            {"candidates": list(FBT_CANDIDATE_GRID)},
            lambda p: lambda split: shelves[split].ranker(p["candidates"], fused[split].fusion),
        ),
    ]
    rows, values = [], {}
    for name, description, grid, make in models:
        trials = []
        for params in grid_points(grid) if grid else []:
            trials.append(
                {
                    "params": params,
                    "ndcg@10": round(float(value(name, make(params), "validation")["ndcg@10"].mean()), 6),
                }
            )
        params = max(trials, key=lambda t: t["ndcg@10"])["params"] if trials else {}
        per = value(name, make(params), "test")
        values[name] = per["ndcg@10"].to_numpy()
        rows.append(
            {
                "model": name,
                "description": description,
                "group": {SERVED: "served", MIXED_WEIGHTS: "reference"}.get(name, "baseline"),
                "params": params,
                "validation": trials,
                "metrics": _summary(per, metrics),
            }
        )
        log(f"  fbt {name} {params} test ndcg@10={rows[-1]['metrics']['ndcg@10']:.4f}")
    return (
        {
            "shelf": "frequently_bought_together",
            "metric": "ndcg@10",
            "invoices": len(invoices["test"].users),
            "models": rows,
            "comparison": _compare(rows, values, "ndcg@10"),
        },
        shelves["test"].ranker(next(r["params"]["candidates"] for r in rows if r["model"] == SERVED), own["test"]),
        invoices["test"],
    )


# ------------------------------------------------------------------------------------------------------ similar items
SIMILAR_K = 10
SIMILAR_NOTE = (
    "PROXY (no purchase ground truth for substitutes): a customer bought j in the place of i when i and j share a "
    "type noun (a title's last word, training.evaluate.search_relevance.type_noun), they bought i before the "
    "cut-off and not again in the window, and bought j in the window but never before. One unit per (customer, type "
    "noun): the context is their most recently bought such i, relevant = every such j; the list is the shelf for "
    "that customer on i's page. same_type@10 = share of the first 10 results with i's type noun."
)


@dataclass(frozen=True)
class Substitutions:
    """The similar-items proxy's units (SIMILAR_NOTE): customer, context product, substitutes bought in its place."""

    users: list[str]
    contexts: np.ndarray
    substitutes: list[np.ndarray]

    @classmethod
    def of(cls, split: Split, nouns: np.ndarray) -> "Substitutions":
        p = split.train.purchases
        last = p.groupby(["user_id", "item_idx"])["ts"].max()
        users, contexts, substitutes = [], [], []
        for row, user in enumerate(map(str, split.users)):
            window = split.truth.indices[split.truth.indptr[row] : split.truth.indptr[row + 1]]
            before = split.history.indices[split.history.indptr[row] : split.history.indptr[row + 1]]
            new = np.setdiff1d(window, before)
            replaced = np.setdiff1d(before, window)
            for noun in sorted(set(nouns[new]) & set(nouns[replaced]) - {""}):
                kin = replaced[nouns[replaced] == noun]
                when = [last.get((user, int(i)), pd.Timestamp.min) for i in kin]
                users.append(user)
                contexts.append(int(kin[int(np.argmax(when))]))
                substitutes.append(new[nouns[new] == noun].astype(np.int64))
        return cls(users, np.asarray(contexts, np.int64), substitutes)


def _similar_metrics(units: Substitutions, nouns: np.ndarray, rank: Callable[[int], np.ndarray]) -> pd.DataFrame:
    """Per unit: NDCG@10, hit rate@10 and recall@10 against the substitutes, and the same-type share of the first
    10; `rank(unit)` gives the ranked list."""
    rows = []
    for u, (context, relevant) in enumerate(zip(units.contexts, units.substitutes)):
        ranked = rank(u)[:SIMILAR_K]
        hits = np.isin(ranked, relevant)
        rows.append(
            {
                "ndcg@10": ranked_list_ndcg(ranked, relevant, SIMILAR_K),
                "hit_rate@10": float(hits.any()),
                "recall@10": float(hits.sum() / len(relevant)),
                "same_type@10": float(np.mean(nouns[ranked] == nouns[context])) if len(ranked) else 0.0,
            }
        )
    return pd.DataFrame(rows)


def nearest_titles(embeddings: np.ndarray, item: int, n: int) -> np.ndarray:
    """The n products whose title embeddings are nearest (cosine) to `item`'s, nearest first, never itself (what
    retrieval's ANN gives the similar-items shelf, exactly)."""
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    sim = unit @ unit[item]
    sim[item] = -np.inf
    return np.argsort(-sim, kind="stable")[:n]


def similar_shelf(test: Split, fused: Any, embeddings: np.ndarray, log: Callable[[str], None]) -> dict:
    """Similar items on the test window's substitution units (SIMILAR_NOTE): the shelf as served (its
    SIMILAR_CANDIDATES nearest titles ordered by the fused rankers for the customer) against title-embedding kNN
    and same-type popularity. No hyper-parameters."""
    from libs.shelves import SIMILAR_CANDIDATES
    from training.evaluate.search_relevance import type_noun

    nouns = np.array([type_noun(t) for t in test.train.items["title"].astype(str)], dtype=object)
    units = Substitutions.of(test, nouns)
    popularity = recent_popularity(test.train)
    store = _store(fused)
    near = [nearest_titles(embeddings, int(i), SIMILAR_CANDIDATES) for i in units.contexts]
    fusion = fused.fusion.for_shelf(SIMILAR_SHELF)
    components = list_components(fused, [(store.user_context(u), c) for u, c in zip(units.users, near)])
    ordered = [fusion.combine(c) for c in components]
    served = [c[np.argsort(-f, kind="stable")] for c, f in zip(near, ordered)]

    def same_type_popularity(u: int) -> np.ndarray:
        i = int(units.contexts[u])
        order = np.lexsort((-popularity, nouns != nouns[i]))
        return order[order != i][:SIMILAR_K]

    models = [
        ("title_knn", "the nearest titles by MiniLM embedding (cosine)", lambda u: near[u]),
        (
            "same_type_popularity",
            "products with the context's type noun by orders in the last 28 days",
            same_type_popularity,
        ),
        (
            SERVED,
            f"the shelf as served: the {SIMILAR_CANDIDATES} nearest titles ordered by the fused rankers",
            lambda u: served[u],
        ),
    ]
    metrics = ("ndcg@10", "hit_rate@10", "recall@10", "same_type@10")
    rows, values = [], {}
    for name, description, rank in models:
        per = _similar_metrics(units, nouns, rank)
        values[name] = per["ndcg@10"].to_numpy()
        group = "served" if name == SERVED else "baseline"
        rows.append(
            {
                "model": name,
                "description": description,
                "group": group,
                "params": {},
                "validation": [],
                "metrics": _summary(per, metrics),
            }
        )
        log(f"  similar_items {name} test ndcg@10={rows[-1]['metrics']['ndcg@10']:.4f}")
    return {
        "shelf": "similar_items",
        "metric": "ndcg@10",
        "proxy": SIMILAR_NOTE,
        "units": len(units.users),
        "models": rows,
        "comparison": _compare(rows, values, "ndcg@10"),
    }


def served_agreement(
    test: Split,
    served_scores: dict[str, np.ndarray],
    fbt: Callable[[int, str, int], np.ndarray],
    invoices: Invoices,
    n: int,
    max_invoices: int = 200,
) -> dict[str, dict]:
    """How often the shelves as the gateway serves them (retrieval's shelf candidates + the ranking core over the
    served ONNX files, training.evaluate.served, each with its shelf's fusion weights as the gateway asks:
    libs.scoring.shelf_variant) return exactly the evaluated top 20 (`served_scores` per shelf name; `fbt` the
    evaluated frequently-bought-together ranker): every test customer for buy it again and discover, every product
    of the first `max_invoices` test invoices for frequently bought together."""
    from libs.features import POOL_MAX
    from libs.shelves import FBT_CANDIDATES
    from training.evaluate.served import DEADLINE_S, ServedSearch

    served = ServedSearch()
    served.fit(test.train)
    ids = served.store.item_index

    async def top(user: str, shelf: d.Shelf, context: Sequence[str] = ()) -> list[int]:
        cands, _ = await served.retrieval.user_candidates(user, [], POOL_MAX, shelf, context)
        if not cands:
            return []
        variant = shelf_variant("fused", shelf)
        ranked = await served.ranking.rank(
            user, "", [c.product_id for c in cands], FBT_RECALL_K, variant, 0.0, [], DEADLINE_S
        )
        return ids.get_indexer([i.product_id for i in ranked.items]).tolist()

    out = {}
    for name, shelf in (("buy_again", d.Shelf.BUY_AGAIN), ("discover", d.Shelf.DISCOVER)):
        _, eligible = _shelf_truth(test, name)
        expected = ranking_order(restricted(served_scores[name], eligible))[:, :FBT_RECALL_K]
        same = []
        for row, user in enumerate(test.users):
            got = asyncio.run(top(str(user), shelf))
            same.append(len(got) > 0 and got == expected[row, : len(got)].tolist())
        out[name] = {"lists": len(same), "same_top20_order": round(float(np.mean(same)), 6)}
    same = []
    rank = fbt
    for row, (user, items) in enumerate(list(zip(invoices.users, invoices.items))[:max_invoices]):
        for item in items:
            got = asyncio.run(top(user, d.Shelf.FREQUENTLY_BOUGHT_TOGETHER, [ids[int(item)]]))
            same.append(got == rank(row, user, int(item)).tolist())
    out["frequently_bought_together"] = {
        "lists": len(same),
        "same_top20_order": round(float(np.mean(same)), 6),
        "served_candidates": FBT_CANDIDATES,
        "evaluated_candidates": n,
    }
    return out


SHELVES = ("buy_again", "discover", "frequently_bought_together", "similar_items")


def evaluate_shelves(
    ds: Dataset,
    validation: Split,
    test: Split,
    log: Callable[[str], None] = lambda _: None,
    only: Sequence[str] = SHELVES,
    served_check: bool = True,
) -> dict:
    """Every shelf of `only` (all by default; a subset while iterating), then the served-path check of the
    evaluated buy again / discover / frequently bought together (`served_check`)."""
    from training.evaluate.run import item_embeddings
    from training.models.scorers import FusedScorer

    unknown = set(only) - set(SHELVES)
    if unknown:
        raise ValueError(f"unknown shelves {sorted(unknown)}; known: {', '.join(SHELVES)}")
    fused = {}
    for name, split in (("validation", validation), ("test", test)):
        if name == "test" or "frequently_bought_together" in only:
            fused[name] = FusedScorer()
            fused[name].fit(split.train)
    customer = {"buy_again": (BUY_AGAIN, d.Shelf.BUY_AGAIN.value), "discover": (DISCOVER, d.Shelf.DISCOVER.value)}
    served = {}
    if set(customer) & set(only):
        # The shelves' own fusion weights and the mixed list's (FOR_YOU: the reference rows), the rankers run once.
        shelf_values = [value for _, value in customer.values()] + [d.Shelf.FOR_YOU.value]
        scores = fused["test"].shelf_scores(list(test.users), shelf_values)
        served = {name: scores[value] for name, (_, value) in customer.items()}
    result, fbt = {}, None
    for shelf, (candidates, value) in customer.items():
        if shelf in only:
            mixed = scores[d.Shelf.FOR_YOU.value]
            result[shelf] = customer_shelf(shelf, candidates, validation, test, served[shelf], log, mixed)
            result[shelf]["fusion_weights"] = dict(fused["test"].fusion.for_shelf(value).weights)
    if "frequently_bought_together" in only:
        result["frequently_bought_together"], fbt, invoices = fbt_shelf(ds, validation, test, fused, log)
        weights = fused["test"].fusion.for_shelf(FBT_SHELF).weights
        result["frequently_bought_together"]["fusion_weights"] = dict(weights)
    if "similar_items" in only:
        result["similar_items"] = similar_shelf(test, fused["test"], item_embeddings(test.n_items), log)
        result["similar_items"]["fusion_weights"] = dict(fused["test"].fusion.for_shelf(SIMILAR_SHELF).weights)
    if served_check and {"buy_again", "discover", "frequently_bought_together"} <= set(only):
        n = next(
            r["params"]["candidates"] for r in result["frequently_bought_together"]["models"] if r["model"] == SERVED
        )
        for name, agreement in served_agreement(test, served, fbt, invoices, n).items():
            result[name]["served_agreement"] = agreement
    return result


# ------------------------------------------------------------------------------------------------------ reports
def markdown(result: dict) -> str:
    lines = [
        "# Shelves: each against its own baselines (test split)",
        "",
        "Hyper-parameters on the validation split by the shelf's NDCG; the served model is the fused rankers over "
        "the shelf's candidates with the shelf's own fusion weights, fitted on validation by its own NDCG "
        f"(training/train/shelf_fusion.py; {MIXED_WEIGHTS}: the mixed list's weights, for reference). Interval: "
        "paired bootstrap 95% over customers (invoices for frequently bought together; (customer, type noun) units "
        "for similar items) against the shelf's best baseline by test NDCG.",
        "",
    ]
    for shelf in result.values():
        names = list(shelf["models"][0]["metrics"])
        lines += [
            f"## {shelf['shelf']}",
            "",
            "| model | params | " + " | ".join(names) + " |",
            "|---|---|" + "---:|" * len(names),
        ]
        for row in shelf["models"]:
            params = ", ".join(f"{k}={v}" for k, v in row["params"].items()) or "-"
            lines.append(
                f"| {row['model']} | {params} | "
                + " | ".join(
                    f"{row['metrics'][n]:.4f}" if isinstance(row["metrics"][n], float) else str(row["metrics"][n])
                    for n in names
                )
                + " |"
            )
        c = shelf["comparison"]
        if proxy := shelf.get("proxy"):
            lines += ["", f"{proxy} {shelf['units']} units."]
        if weights := shelf.get("fusion_weights"):
            lines += ["", "Fusion weights: " + ", ".join(f"{k} {v:g}" for k, v in weights.items()) + "."]
        lines += [
            "",
            f"{c['model']} vs {c['baseline']} ({c['metric']}): ratio {c['ratio']:.3f} "
            f"[{c['ratio_ci_low']:.3f}, {c['ratio_ci_high']:.3f}], difference {c['difference']:+.4f} "
            f"[{c['difference_ci_low']:+.4f}, {c['difference_ci_high']:+.4f}], {c['users']} units",
            "",
        ]
        if agreement := shelf.get("served_agreement"):
            lines += [
                f"Served path (retrieval's shelf candidates + ranking over the ONNX files): the same top 20 in "
                f"{100 * agreement['same_top20_order']:.1f}% of {agreement['lists']} lists.",
                "",
            ]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(result), figsize=(5 * len(result), 4))
    for ax, shelf in zip(np.atleast_1d(axes), result.values()):
        rows = shelf["models"]
        ax.barh(
            [r["model"] for r in rows],
            [r["metrics"][shelf["metric"]] for r in rows],
            color=[{"served": "tab:orange", "reference": "tab:gray"}.get(r["group"], "tab:blue") for r in rows],
        )
        ax.invert_yaxis()
        ax.set_title(f"{shelf['shelf']} ({shelf['metric']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(result: dict, out_dir: Path) -> dict[str, Path]:
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "shelves_md": out_dir / "shelves.md",
        "shelves_json": out_dir / "shelves.json",
        "shelves_png": out_dir / "shelves.png",
    }
    paths["shelves_md"].write_text(markdown(result))
    paths["shelves_json"].write_text(json.dumps(result, indent=2) + "\n")
    plot(result, paths["shelves_png"])
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """python -m training.evaluate.shelves: only the per-shelf evaluation (reports/shelves.*)."""
    import argparse
    import sys

    from libs.catalog import default_artifacts_root, load_dataset
    from training.evaluate.split import standard_splits

    parser = argparse.ArgumentParser(prog="python -m training.evaluate.shelves", description=main.__doc__)
    parser.add_argument("--reports", type=Path, default=Path(__file__).resolve().parents[2] / "reports")
    parser.add_argument(
        "--shelves",
        default=",".join(SHELVES),
        help=f"comma-separated subset of {','.join(SHELVES)} (while iterating; the reports then hold only those)",
    )
    parser.add_argument("--no-served-check", action="store_true", help="skip the served-path top-20 check")
    args = parser.parse_args(argv)
    ds = load_dataset(default_artifacts_root())
    validation, test = standard_splits(ds)
    result = evaluate_shelves(
        ds,
        validation,
        test,
        lambda msg: print(msg, file=sys.stderr, flush=True),
        [s for s in args.shelves.split(",") if s],
        not args.no_served_check,
    )
    paths = write_reports(result, args.reports)
    print(markdown(result))
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
