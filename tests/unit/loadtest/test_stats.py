"""Load-test statistics, table and chart on synthetic latencies (no processes, no network)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from loadtest import stats
from loadtest.stats import Sample


def test_percentiles_match_numpy_and_handle_empty() -> None:
    lat = np.random.default_rng(0).exponential(0.01, size=10_000)
    p50, p95, p99 = stats.percentiles_ms(lat)
    assert p50 == pytest.approx(np.percentile(lat, 50) * 1000)
    assert p50 < p95 < p99
    assert p50 == pytest.approx(math.log(2) * 10, rel=0.05)  # median of Exp(mean 10 ms)
    assert all(math.isnan(v) for v in stats.percentiles_ms([]))


def test_summarise_counts_errors_degradations_and_rate() -> None:
    samples = (
        [Sample("Search", 0.010)] * 80
        + [Sample("Search", 0.020, degraded=True)] * 20
        + [Sample("Search", 0.001, "UNAVAILABLE")] * 5
        + [Sample("Recommend", 5.0, "DEADLINE_EXCEEDED")] * 2
    )
    row = stats.summarise("gateway", "mix", 4, 10.0, samples)
    assert row.requests == 107 and row.rps == pytest.approx(10.7)
    assert row.errors == {"DEADLINE_EXCEEDED": 2, "UNAVAILABLE": 5}
    assert row.degraded_share == pytest.approx(0.2)  # of the 100 OK responses
    assert row.p50_ms == pytest.approx(10.0) and row.p99_ms == pytest.approx(20.0)  # errors excluded


def test_rows_split_by_rpc_and_ceiling_share() -> None:
    gw = [Sample("Search", 0.02)] * 30 + [Sample("Recommend", 0.01)] * 10
    echo = [Sample("Search", 0.001)] * 400
    rows = stats.rows_for_step("echo", 4, 1.0, echo) + stats.rows_for_step("gateway", 4, 1.0, gw)
    assert [(r.target, r.rpc) for r in rows] == [
        ("echo", "mix"),
        ("gateway", "mix"),
        ("gateway", "Recommend"),
        ("gateway", "Search"),
    ]
    stats.attach_ceiling(rows)
    assert rows[1].ceiling_share == pytest.approx(40 / 400)
    assert rows[0].ceiling_share is None and rows[2].ceiling_share is None


def test_all_failed_step_renders() -> None:
    row = stats.summarise("gateway", "mix", 1, 2.0, [Sample("Search", 0.001, "UNAVAILABLE")] * 3)
    assert math.isnan(row.p50_ms) and row.degraded_share == 0.0
    table = stats.markdown_table([row])
    assert "| - | - | - | UNAVAILABLE 3 |" in table
    json.dumps(row.as_dict())  # NaN is valid for Python's json (reports/load.json)


def test_markdown_table_shape() -> None:
    rows = [stats.summarise("gateway", "mix", c, 1.0, [Sample("Search", 0.01 * c)] * 10) for c in (1, 4)]
    lines = stats.markdown_table(rows).splitlines()
    assert len(lines) == 4
    assert {line.count("|") for line in lines} == {12}
    assert lines[2].startswith("| gateway | mix | 1 | 10 | 10.0 | 10.0 |")


def test_plot_writes_png(tmp_path: Path) -> None:
    rows = []
    for c in (1, 4, 16):
        rows += stats.rows_for_step("echo", c, 1.0, [Sample("Search", 0.001)] * (500 * c))
        rows += stats.rows_for_step(
            "gateway", c, 1.0, [Sample("Search", 0.01 * c)] * (50 * c) + [Sample("Recommend", 0.02)] * 5
        )
    out = stats.plot(stats.attach_ceiling(rows), tmp_path / "load.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp"))
