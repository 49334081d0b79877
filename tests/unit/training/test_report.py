"""Report output: table text, Markdown, JSON without timings, PNG."""

from __future__ import annotations

import json
from pathlib import Path

from training.evaluate.metrics import ALL_METRICS
from training.evaluate.report import format_markdown, format_text, write_reports


def fake_results() -> dict:
    split = {
        "train": "< 2011-11-11",
        "train_purchases": 10,
        "train_customers": 3,
        "window": "2011-11-11 .. 2011-11-24",
        "eval_users": 2,
        "new_customers_not_evaluated": 1,
        "truth_pairs": 4,
        "truth_repeat_share": 0.5,
        "truth_items_unseen_in_train": 0.0,
    }
    metrics = {name: 0.25 for name in ALL_METRICS}
    return {
        "dataset": {
            "name": "UCI Online Retail",
            "version": "abc-p1",
            "time_span": {"first": "a", "last": "b"},
            "items": 5,
            "customers": 3,
        },
        "splits": {"validation": split, "test": split},
        "models": [
            {
                "model": "popularity",
                "group": "baseline",
                "params": {"window_days": 14},
                "metrics": metrics,
                "seconds": 0.1,
            },
            {"model": "mf", "group": "model", "params": {}, "metrics": {**metrics, "ndcg@20": 0.5}, "seconds": 2.0},
        ],
        "comparison": {
            "model": "mf",
            "baseline": "popularity",
            "metric": "ndcg@20",
            "users": 2,
            "n_resamples": 1000,
            "confidence": 0.95,
            "seed": 42,
            "method": "paired percentile bootstrap over customers",
            "difference": 0.25,
            "difference_ci_low": 0.1,
            "difference_ci_high": 0.4,
            "ratio": 2.0,
            "ratio_ci_low": 1.5,
            "ratio_ci_high": 2.5,
            "target_ratio": 1.1,
            "meets_target": True,
        },
        "search_proxy": {
            "label": "PROXY: test",
            "queries": {"queries": 3, "users": 2, "mean_relevant": 1.5, "top_words": {"lantern": 2}},
            "searchers": [{"searcher": "bm25", "params": {}, "proxy_ndcg@10": 0.3}],
        },
    }


def test_text_table_has_dates_counts_and_rows() -> None:
    text = format_text(fake_results())
    assert "2011-11-11 .. 2011-11-24" in text and "2 returning customers" in text
    assert "popularity" in text and "window_days=14" in text and "0.5000" in text
    assert "PROXY" in text
    assert "ratio 2.000x, CI [1.500, 2.500]" in text and "mf reaches it" in text
    assert text.index("ndcg@20 ") < text.index("ndcg@20_new") < text.index("recall@20 ")  # new next to overall


def test_files_are_written_without_timings(tmp_path: Path) -> None:
    paths = write_reports(fake_results(), tmp_path)
    data = json.loads(paths["json"].read_text())
    assert "seconds" not in data["models"][0]
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["png_new"].name == "eval_overall_vs_new.png"
    assert paths["png_new"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert data["comparison"]["baseline"] == "popularity"
    markdown = paths["markdown"].read_text()
    assert "| popularity | baseline |" in markdown and "PROXY" in markdown and "CC BY 4.0" in markdown
    assert "paired bootstrap" in markdown and "eval_overall_vs_new.png" in markdown
    assert markdown == format_markdown(fake_results())


def test_repeat_vs_explore_and_served_agreement_are_reported(tmp_path: Path) -> None:
    results = fake_results()
    results["models"][0]["metrics"] = {**results["models"][0]["metrics"], "ndcg@20_new": 0.08}
    frontier = [
        {
            "explore": x,
            "variant": f"fused+explore={x:g}" if x else "fused",
            "metrics": {"ndcg@20": 0.5 - x / 2, "ndcg@20_new": 0.02 + x / 5},
        }
        for x in (0.0, 0.1, 0.3, 1.0)
    ]
    results["explore_frontier"] = frontier
    results["served_agreement"] = {
        "served": "served_recommend",
        "model": "mf",
        "users": 2,
        "same_top20_order": 0.5,
        "same_top20_set": 1.0,
    }
    text = format_text(results)
    # 0.3 is the first setting whose new-product NDCG (0.08) reaches popularity's; 0.35 overall = 1.40x popularity.
    assert "fused+explore=0.3, scores 0.3500 overall, 1.40x the best baseline (popularity)" in text
    assert "same top 20 as mf for 50.0% of the 2 customers (same set: 100.0%)" in text
    paths = write_reports(results, tmp_path)
    assert "## Repeat vs explore" in paths["markdown"].read_text()
    assert paths["png_new"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
