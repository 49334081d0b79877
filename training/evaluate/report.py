"""Present the evaluation: one text table (stdout), JSON + Markdown + two PNG charts under reports/ (NDCG@20 per
model; overall vs new-item NDCG@20 per model with the served ranking's repeat-vs-explore curve), the fused model vs
best baseline bootstrap interval, how often the served Recommend path returns what was evaluated, and the
repeat-vs-explore table.

The files hold no timings or timestamps, so the same data and code give byte-identical reports.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: CI and servers
import matplotlib.pyplot as plt

import math

from training.evaluate.metrics import ALL_METRICS

# Table order: each overall figure next to its new-item (discovery) version, then list figures, then repeats.
TABLE_METRICS = (
    "ndcg@20",
    "ndcg@20_new",
    "recall@20",
    "recall@20_new",
    "hit_rate@10",
    "mrr",
    "coverage@20",
    "ild@20",
    "already_bought@20",
    "ndcg@20_repeat",
    "recall@20_repeat",
)
assert set(TABLE_METRICS) == set(ALL_METRICS), "every metric has a column"

ATTRIBUTION = (
    "Data: UCI Online Retail (Chen, Sain & Guo 2012, doi:10.1057/dbm.2012.17), UCI Machine Learning Repository, "
    "CC BY 4.0"
)
REPORT_STEM = "eval"


def _header_lines(results: dict) -> list[str]:
    ds = results["dataset"]
    lines = [
        f"Offline evaluation - {ds['name']}, prepared version {ds['version']}, "
        f"{ds['time_span']['first']} .. {ds['time_span']['last']}, {ds['items']} products, {ds['customers']} customers",
    ]
    for name, s in results["splits"].items():
        lines.append(
            f"{name:>10}: train {s['train']} ({s['train_purchases']} purchases, {s['train_customers']} customers) | "
            f"window {s['window']}: {s['eval_users']} returning customers evaluated, "
            f"{s['new_customers_not_evaluated']} new customers not evaluated, {s['truth_pairs']} (user, product) "
            f"truth pairs, {s['truth_repeat_share']:.1%} repeats, {s['truth_items_unseen_in_train']:.2%} of "
            f"products never sold before the cut-off"
        )
    lines.append(
        "Full ranking over the whole catalogue; ground truth = distinct products bought in the window (repeats "
        "relevant); *_new = truth restricted to products the customer had never bought before the cut-off "
        "(discovery), *_repeat = to products bought before; coverage@20 = share of the catalogue in some top 20; "
        "ild@20 = mean pairwise cosine distance of title embeddings within a top 20."
    )
    return lines


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "-"


def _number(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def model_table(results: dict) -> tuple[list[str], list[list[str]]]:
    columns = ["model", "kind", *TABLE_METRICS, "params"]
    rows = [
        [
            r["model"],
            r.get("group", "model"),
            *[_number(r["metrics"].get(m)) for m in TABLE_METRICS],
            _params(r["params"]),
        ]
        for r in results["models"]
    ]
    return columns, rows


def comparison_lines(results: dict) -> list[str]:
    c = results.get("comparison")
    if not c:
        return []
    verdict = "reaches" if c["meets_target"] else "does NOT reach"

    def pct(x: float) -> str:
        return f"{x:.1%}"

    return [
        f"{c['model']} vs the best baseline by test NDCG@20 ({c['baseline']}), {c['users']} customers, "
        f"{c['method']} ({c['n_resamples']} resamples, seed {c['seed']}):",
        f"NDCG@20 difference {c['difference']:+.4f}, {pct(c['confidence'])} CI [{c['difference_ci_low']:+.4f}, "
        f"{c['difference_ci_high']:+.4f}]; ratio {c['ratio']:.3f}x, CI [{c['ratio_ci_low']:.3f}, "
        f"{c['ratio_ci_high']:.3f}]",
        f"the {c['target_ratio']:.2f}x target: {c['model']} {verdict} it.",
    ]


def frontier_table(results: dict) -> tuple[list[str], list[list[str]]]:
    metrics = list(results["explore_frontier"][0]["metrics"])
    columns = ["variant", "explore", *metrics]
    rows = [
        [r["variant"], f"{r['explore']:g}", *[_number(r["metrics"][m]) for m in metrics]]
        for r in results["explore_frontier"]
    ]
    return columns, rows


def frontier_lines(results: dict) -> list[str]:
    """Where the served ranking's discovery reaches popularity's, and what that costs overall."""
    rows = results.get("explore_frontier")
    popularity = next((r for r in results["models"] if r["model"] == "popularity"), None)
    if not rows or popularity is None:
        return []
    target = popularity["metrics"]["ndcg@20_new"]
    baselines = [r for r in results["models"] if r.get("group") == "baseline"]
    best = max(baselines, key=lambda r: r["metrics"]["ndcg@20"]) if baselines else None
    reached = next((r for r in rows if r["metrics"]["ndcg@20_new"] >= target), None)
    lines = [
        f"popularity's ndcg@20_new is {target:.4f}; at the trained balance (explore 0) the fused rankers score "
        f"{rows[0]['metrics']['ndcg@20_new']:.4f} on new products and {rows[0]['metrics']['ndcg@20']:.4f} "
        "overall."
    ]
    if reached is None:
        lines.append("No setting in the table reaches popularity's new-product NDCG@20.")
    else:
        versus = (
            (f", {reached['metrics']['ndcg@20'] / best['metrics']['ndcg@20']:.2f}x the best baseline ({best['model']})")
            if best
            else ""
        )
        lines.append(
            f"The first setting that reaches it, {reached['variant']}, scores "
            f"{reached['metrics']['ndcg@20']:.4f} overall{versus}."
        )
    return lines


def agreement_lines(results: dict) -> list[str]:
    a = results.get("served_agreement")
    if not a:
        return []
    return [
        f"The gateway's Recommend path in process ({a['served']}: retrieval's user candidates, ranking over the "
        f"served ONNX files) returns the same top 20 as {a['model']} for {a['same_top20_order']:.1%} of the "
        f"{a['users']} customers (same set: {a['same_top20_set']:.1%}); the rest differ by near-ties between the "
        "ONNX and PyTorch scores."
    ]


def search_table(results: dict) -> tuple[list[str], list[list[str]]]:
    columns = ["searcher", "proxy_ndcg@10", "params"]
    rows = [
        [r["searcher"], f"{r['proxy_ndcg@10']:.4f}", _params(r["params"])] for r in results["search_proxy"]["searchers"]
    ]
    return columns, rows


def _text_table(columns: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(w) if i in (0, len(cells) - 1) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths))
        )

    return "\n".join([fmt(columns), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return cell == "n/a"
    return True


def _markdown_table(columns: list[str], rows: list[list[str]]) -> str:
    # Numbers right-aligned, text (names, kinds, params) left-aligned.
    align = ["---:" if rows and all(_is_number(r[i]) for r in rows) else "---" for i in range(len(columns))]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def fidelity_lines(results: dict) -> list[str]:
    f = results.get("fidelity")
    if not f:
        return []
    return [
        f"Explanation fidelity (deletion test, served ONNX models, test split): {f['users']} customers, "
        f"{f['items']} explained items, k={f['k']} pieces removed",
        f"mean score drop, named evidence {f['mean_drop_named']:.4f} vs random history items "
        f"{f['mean_drop_random']:.4f}: ratio to the mean absolute random drop {f['drop_ratio']:.1f} "
        f"(target >= {f['targets']['drop_ratio']:.0f}); "
        f"named beats random on {f['share_named_beats_random']:.1%} of items "
        f"(target >= {f['targets']['share_named_beats_random']:.0%})",
    ]


def format_text(results: dict, timings: bool = True) -> str:
    columns, rows = model_table(results)
    if timings:
        columns = columns + ["fit+score s"]
        rows = [r + [f"{m['seconds']:.1f}"] for r, m in zip(rows, results["models"])]
    parts = [*_header_lines(results), "", _text_table(columns, rows)]
    if "comparison" in results:
        parts += ["", *comparison_lines(results)]
    if "served_agreement" in results:
        parts += ["", *agreement_lines(results)]
    if "explore_frontier" in results:
        parts += [
            "",
            "Repeat vs explore (the fused variant's setting, test split):",
            _text_table(*frontier_table(results)),
            *frontier_lines(results),
        ]
    if "search_proxy" in results:
        sp = results["search_proxy"]
        q = sp["queries"]
        parts += [
            "",
            f"Personalised search - {sp['label']}",
            f"{q['queries']} queries from {q['users']} customers (test window), {q['mean_relevant']} relevant "
            f"products per query on average",
            _text_table(*search_table(results)),
        ]
    if "fidelity" in results:
        parts += ["", *fidelity_lines(results)]
    return "\n".join(parts)


def format_markdown(results: dict) -> str:
    parts = ["# Offline evaluation", "", *(f"- {line.strip()}" for line in _header_lines(results)), ""]
    parts += ["## Recommendation (test split)", "", _markdown_table(*model_table(results)), ""]
    if "comparison" in results:
        parts += [
            "## Fused rankers vs the best baseline (paired bootstrap)",
            "",
            *(f"- {line}" for line in comparison_lines(results)),
            "",
        ]
    if "served_agreement" in results:
        parts += ["## Served = evaluated", "", *(f"- {line}" for line in agreement_lines(results)), ""]
    if "explore_frontier" in results:
        parts += [
            "## Repeat vs explore",
            "",
            "The fused variant's repeat-vs-explore setting (`fused+explore=x`: x times the fused score's spread "
            "added to products the customer never bought; 0 = the balance the rankers learned, served by "
            "default).",
            "",
            _markdown_table(*frontier_table(results)),
            "",
            *(f"- {line}" for line in frontier_lines(results)),
            "",
        ]
    parts += ["![overall vs new-item NDCG@20](eval_overall_vs_new.png)", ""]
    if "search_proxy" in results:
        sp = results["search_proxy"]
        q = sp["queries"]
        parts += [
            "## Personalised search (PROXY)",
            "",
            f"{sp['label']}. {q['queries']} queries from {q['users']} customers, {q['mean_relevant']} relevant "
            f"products per query on average. Most frequent query words: "
            + ", ".join(f"{w} ({n})" for w, n in q["top_words"].items())
            + ".",
            "",
            _markdown_table(*search_table(results)),
            "",
        ]
    if "fidelity" in results:
        parts += ["## Explanation fidelity", "", *(f"- {line}" for line in fidelity_lines(results)), ""]
    parts += [f"_{ATTRIBUTION}._", ""]
    return "\n".join(parts)


def stable(results: dict) -> dict:
    """The results without run timings (for files that must not change between identical runs)."""
    out = copy.deepcopy(results)
    for row in out.get("models", []):
        row.pop("seconds", None)
    return out


def plot_ndcg(results: dict, path: Path) -> None:
    names = [r["model"] for r in results["models"]]
    values = [r["metrics"]["ndcg@20"] for r in results["models"]]
    test = results["splits"]["test"]
    fig, ax = plt.subplots(figsize=(max(8.0, 1.0 * len(names)), 4.8), dpi=120)
    bars = ax.bar(names, values, color="#4C72B0")
    ax.bar_label(bars, labels=[f"{v:.3f}" for v in values], padding=2, fontsize=9)
    ax.set_ylabel("NDCG@20 (test)")
    ax.set_ylim(0, max(values + [0.01]) * 1.15)
    ax.set_title(f"NDCG@20 per model - window {test['window']}, {test['eval_users']} returning customers", fontsize=10)
    plt.setp(ax.get_xticklabels(), rotation=25, ha="right", rotation_mode="anchor")
    fig.text(0.01, 0.01, ATTRIBUTION, fontsize=6, color="#555555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def plot_overall_vs_new(results: dict, path: Path) -> None:
    """Labelled scatter: overall NDCG@20 (x) vs new-item NDCG@20 (y, log scale when all positive) per model.

    Models on the same point (to 3 decimals, e.g. a tuned baseline that reduced to another) share one label.
    """
    test = results["splits"]["test"]
    points: dict[tuple[float, float], list[dict]] = {}
    for r in results["models"]:
        key = (round(r["metrics"]["ndcg@20"], 3), round(r["metrics"]["ndcg@20_new"], 3))
        points.setdefault(key, []).append(r)
    fig, ax = plt.subplots(figsize=(9.0, 6.0), dpi=120)
    placed: list[tuple[float, float]] = []
    for (x, y), group in sorted(points.items()):
        baseline = all(r.get("group") == "baseline" for r in group)
        ax.scatter(x, y, color="#4C72B0" if baseline else "#DD8452", marker="o" if baseline else "s", s=36)
        # Stagger the labels of points close to an already-labelled one (same neighbourhood on both axes).
        crowd = sum(abs(x - px) < 0.03 and abs(y - py) <= 0.15 * max(y, py, 1e-9) for px, py in placed)
        placed.append((x, y))
        label = " = ".join(r["model"] for r in group)
        if crowd:  # below and to the right, one line further per crowding neighbour, with a leader line
            ax.annotate(
                label,
                (x, y),
                textcoords="offset points",
                xytext=(28, -16 * crowd),
                fontsize=8,
                arrowprops={"arrowstyle": "-", "color": "#888888", "lw": 0.6},
            )
        else:
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    frontier = results.get("explore_frontier") or []
    if frontier:  # the served ranking's repeat-vs-explore trade-off, one point per setting
        fx = [r["metrics"]["ndcg@20"] for r in frontier]
        fy = [r["metrics"]["ndcg@20_new"] for r in frontier]
        ax.plot(fx, fy, color="#55A868", marker=".", lw=1.2, label="fused+explore=x (0 .. 1)")
        for r, x, y in zip(frontier, fx, fy):
            if r["explore"] in (frontier[-1]["explore"], 0.1, 0.3):
                ax.annotate(
                    f"x={r['explore']:g}",
                    (x, y),
                    textcoords="offset points",
                    xytext=(-30, 4),
                    fontsize=7,
                    color="#55A868",
                )
    ax.scatter([], [], color="#4C72B0", marker="o", label="baseline")
    ax.scatter([], [], color="#DD8452", marker="s", label="model")
    ax.legend(loc="upper right", fontsize=8)
    ys = [r["metrics"]["ndcg@20_new"] for r in results["models"]] + [r["metrics"]["ndcg@20_new"] for r in frontier]
    if ys and min(ys) > 0:
        ax.set_yscale("log")
        ax.set_ylim(min(ys) / 1.8, max(ys) * 1.4)  # room for the labels below the lowest points
    else:
        ax.set_ylim(bottom=0)
    ax.set_xlim(0, max(r["metrics"]["ndcg@20"] for r in results["models"]) * 1.45)
    ax.set_xlabel("NDCG@20, all relevant products (test)")
    ax.set_ylabel("NDCG@20 on products new to the customer (test)")
    ax.grid(alpha=0.3, which="both")
    ax.set_title(
        f"Overall vs discovery - window {test['window']}, {test['eval_users']} returning customers", fontsize=10
    )
    fig.text(0.01, 0.01, ATTRIBUTION, fontsize=6, color="#555555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def write_reports(results: dict, out_dir: Path) -> dict[str, Path]:
    """Write eval.json, eval.md, eval_ndcg20.png and eval_overall_vs_new.png under out_dir; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / f"{REPORT_STEM}.json",
        "markdown": out_dir / f"{REPORT_STEM}.md",
        "png": out_dir / f"{REPORT_STEM}_ndcg20.png",
        "png_new": out_dir / f"{REPORT_STEM}_overall_vs_new.png",
    }
    paths["json"].write_text(json.dumps(stable(results), indent=2, sort_keys=False) + "\n")
    paths["markdown"].write_text(format_markdown(results))
    plot_ndcg(results, paths["png"])
    plot_overall_vs_new(results, paths["png_new"])
    return paths
