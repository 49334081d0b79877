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

The served shelves' models are the fused rankers (training.models.scorers.FusedScorer, libs.fusion weights as
fitted on validation for the mixed list: no per-shelf weights yet). Metrics come from training.evaluate.metrics
(torchmetrics, ideal DCG capped at K) and intervals from training.evaluate.stats.paired_bootstrap, against each
shelf's best baseline by test NDCG.
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
from libs.scoring import prior_scores
from libs.shelves import frequently_bought_together
from training.evaluate.baselines import ItemKNN, Popularity, lexicographic, recent_popularity, user_rows
from training.evaluate.metrics import per_user_metrics, rank_scores, ranked_list_ndcg, ranking_order
from training.evaluate.nbr_baselines import GPTopFreq, TifuKNN
from training.evaluate.run import grid_points, seed_everything
from training.evaluate.split import Split, TrainData
from training.evaluate.stats import paired_bootstrap

DAY = 86400.0
FBT_K, FBT_RECALL_K = 10, 20
FBT_CANDIDATE_GRID = (10, 20, 50, 100)  # the shelf's co-purchase candidates (libs.shelves.FBT_CANDIDATES)
SERVED = "fused_rankers"


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
    seed_everything()
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
) -> dict:
    """One customer shelf: its baselines tuned on validation, then every model on test, and the comparison."""
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
    per = _per_user(served_scores, test, shelf)
    values[SERVED] = per["ndcg@20"].to_numpy()
    rows.append(
        {
            "model": SERVED,
            "description": "the shelf as served: its candidates ordered by the fused rankers",
            "group": "served",
            "params": {},
            "validation": [],
            "metrics": _summary(per, metrics),
        }
    )
    log(f"  {shelf} {SERVED} test ndcg@20={rows[-1]['metrics']['ndcg@20']:.4f}")
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


def _popularity_ranker(train: TrainData) -> Callable[[int, str, int], np.ndarray]:
    order = np.argsort(-recent_popularity(train), kind="stable")
    return lambda _row, _user, item: order[order != item][:FBT_RECALL_K]


class FusedShelf:
    """The frequently-bought-together shelf as served: the top-n co-purchases of the context product
    (libs.shelves.frequently_bought_together over the feature store), ordered by the fused rankers' score for the
    invoice's customer (libs.fusion, prior included). Scored once for the largest n; a smaller n keeps the first n
    co-purchases."""

    def __init__(self, fused: Any, invoices: Invoices, n_max: int) -> None:
        from training.train.trainer import score_lists

        parts = fused.parts
        store = next(iter(parts.values())).store
        queries, self.scored = [], {}
        for row, (user, items) in enumerate(zip(invoices.users, invoices.items)):
            ctx = store.user_context(user)
            for item in items:
                together = frequently_bought_together(store.copurchase, [int(item)], n_max)
                cands = np.array([j for j, _ in together], np.int64)
                self.scored[(row, int(item))] = (cands, np.zeros(0))
                if len(cands):
                    queries.append(((row, int(item)), ctx, cands))
        per_model = {
            name: score_lists(name, part.model, part.store, [(c, x) for _, c, x in queries])
            for name, part in parts.items()
        }
        for q, (key, ctx, cands) in enumerate(queries):
            scores = {name: values[q] for name, values in per_model.items()}
            self.scored[key] = (cands, fused.fusion.combine(scores | prior_scores(fused.fusion, store, ctx, cands)))

    def ranker(self, n: int) -> Callable[[int, str, int], np.ndarray]:
        def rank(row: int, _user: str, item: int) -> np.ndarray:
            cands, fused = self.scored[(row, item)]
            cands, fused = cands[:n], fused[:n]
            return cands[np.argsort(-fused, kind="stable")][:FBT_RECALL_K]

        return rank


def fbt_shelf(
    ds: Dataset, validation: Split, test: Split, fused: dict[str, Any], log: Callable[[str], None]
) -> tuple[dict, FusedShelf, Invoices]:
    """Frequently bought together: baselines and the shelf's candidate count tuned on validation NDCG@10; also the
    test shelf and invoices (for the served-path check)."""
    metrics = ("ndcg@10", "recall@20", "hit_rate@10")
    invoices = {"validation": Invoices.of(ds, validation), "test": Invoices.of(ds, test)}
    shelves = {name: FusedShelf(fused[name], invoices[name], max(FBT_CANDIDATE_GRID)) for name in invoices}
    splits = {"validation": validation, "test": test}

    def value(name: str, make: Callable[[TrainData], Callable], split: str) -> pd.DataFrame:
        return _invoice_metrics(invoices[split], make(splits[split].train) if name != SERVED else make(split))

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
            "the shelf as served: its top-n co-purchases ordered by the fused rankers",
            {"candidates": list(FBT_CANDIDATE_GRID)},
            lambda p: lambda split: shelves[split].ranker(p["candidates"]),
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
                "group": "served" if name == SERVED else "baseline",
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
        shelves["test"],
        invoices["test"],
    )


def served_agreement(
    test: Split, served_scores: np.ndarray, fbt: FusedShelf, invoices: Invoices, n: int, max_invoices: int = 200
) -> dict[str, dict]:
    """How often the shelves as the gateway serves them (retrieval's shelf candidates + the ranking core over the
    served ONNX files, training.evaluate.served) return exactly the evaluated top 20: every test customer for buy it
    again and discover, every product of the first `max_invoices` test invoices for frequently bought together."""
    from libs import domain as d
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
        ranked = await served.ranking.rank(
            user, "", [c.product_id for c in cands], FBT_RECALL_K, "fused", 0.0, [], DEADLINE_S
        )
        return ids.get_indexer([i.product_id for i in ranked.items]).tolist()

    out = {}
    for name, shelf in (("buy_again", d.Shelf.BUY_AGAIN), ("discover", d.Shelf.DISCOVER)):
        _, eligible = _shelf_truth(test, name)
        expected = ranking_order(restricted(served_scores, eligible))[:, :FBT_RECALL_K]
        same = []
        for row, user in enumerate(test.users):
            got = asyncio.run(top(str(user), shelf))
            same.append(len(got) > 0 and got == expected[row, : len(got)].tolist())
        out[name] = {"lists": len(same), "same_top20_order": round(float(np.mean(same)), 6)}
    same = []
    rank = fbt.ranker(n)
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


def evaluate_shelves(ds: Dataset, validation: Split, test: Split, log: Callable[[str], None] = lambda _: None) -> dict:
    from training.models.scorers import FusedScorer

    fused = {}
    for name, split in (("validation", validation), ("test", test)):
        fused[name] = FusedScorer()
        fused[name].fit(split.train)
    served = fused["test"].score(list(test.users))
    result = {
        "buy_again": customer_shelf("buy_again", BUY_AGAIN, validation, test, served, log),
        "discover": customer_shelf("discover", DISCOVER, validation, test, served, log),
    }
    result["frequently_bought_together"], fbt, invoices = fbt_shelf(ds, validation, test, fused, log)
    n = next(r["params"]["candidates"] for r in result["frequently_bought_together"]["models"] if r["model"] == SERVED)
    for name, agreement in served_agreement(test, served, fbt, invoices, n).items():
        result[name]["served_agreement"] = agreement
    return result


# ------------------------------------------------------------------------------------------------------ reports
def markdown(result: dict) -> str:
    lines = [
        "# Shelves: each against its own baselines (test split)",
        "",
        "Hyper-parameters on the validation split by the shelf's NDCG; the served model is the fused rankers over "
        "the shelf's candidates (the mixed list's fusion weights). Interval: paired bootstrap 95% over "
        "customers (invoices for frequently bought together) against the shelf's best baseline by test NDCG.",
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
            color=["tab:orange" if r["group"] == "served" else "tab:blue" for r in rows],
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
    args = parser.parse_args(argv)
    ds = load_dataset(default_artifacts_root())
    validation, test = standard_splits(ds)
    result = evaluate_shelves(ds, validation, test, lambda msg: print(msg, file=sys.stderr, flush=True))
    paths = write_reports(result, args.reports)
    print(markdown(result))
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
