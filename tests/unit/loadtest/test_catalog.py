"""The catalogue benchmark's report: its table names every measure and judges the targets."""

from __future__ import annotations

from loadtest.catalog import markdown
from libs.stack import SERVICES


def test_markdown_lists_the_measures_and_judges_the_targets():
    report = {
        "freshness_ms": {"p50": 510.0, "p99": 2100.0, "max": 2300.0, "n": 100},
        "ingest": {"products": 2000, "seconds": 32.0, "products_per_s": 62.5},
        "search_p50_ms": {"idle": 25.0, "during_ingest": 30.0, "n_idle": 200, "n_during": 500},
        "recall": {
            "products": 13780,
            "inserted": 10000,
            "incremental_recall@10": 0.99,
            "fresh_recall@10": 0.995,
            "insert_per_s": 800.0,
        },
        "memory_mb": {"replica1": {s: 100.0 for s in SERVICES}, "replica2": {s: 90.0 for s in SERVICES}},
        "targets": {
            "freshness_p99_ms": {"value": 2100.0, "target": "<= 2000", "ok": False},
            "search_p50_during_over_idle": {"value": 1.2, "target": "<= 1.3", "ok": True},
        },
        "finished": "2026-12-06 22:00 UTC",
        "machine": "2 cores",
    }
    md = markdown(report)
    assert "| 510 / 2100 / 2300 |" in md and "| 62 |" in md and "| 0.990 |" in md
    assert "| freshness_p99_ms | 2100.000 | <= 2000 | NO |" in md
    assert "| search_p50_during_over_idle | 1.200 | <= 1.3 | yes |" in md
    assert "| replica2 | " + " | ".join(["90"] * len(SERVICES)) + " |" in md
