"""Benchmark helpers: input shapes against libs.model_io, bounded timing loops, report rendering."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from libs.rankers import names as ranker_names
from libs.rankers import specs
from loadtest import bench


@pytest.mark.parametrize("model", ranker_names())
def test_random_inputs_fit_the_spec(model: str) -> None:
    x = bench.random_inputs(specs()[model], 3, 17)
    bench.check_inputs(specs()[model], x, 3)
    assert all(v.shape[0] == 3 for v in x.values())


def test_check_inputs_rejects_wrong_dtype_and_dims() -> None:
    spec = specs()["transformer_ranker"]
    x = bench.random_inputs(spec, 2, 5)
    bad = dict(x, hist_ids=x["hist_ids"].astype(np.int32))
    with pytest.raises(ValueError, match="hist_ids"):
        bench.check_inputs(spec, bad, 2)
    bad = dict(x, hist_emb=np.zeros((2, 49, 384), np.float32))
    with pytest.raises(ValueError, match="hist_emb"):
        bench.check_inputs(spec, bad, 2)
    with pytest.raises(ValueError, match="inputs"):
        bench.check_inputs(spec, {k: v for k, v in x.items() if k != "query_mask"}, 2)


def test_time_sync_is_bounded() -> None:
    calls = []
    lat = bench.time_sync(lambda: calls.append(1), budget_s=10.0, max_n=50)
    assert len(lat) == 50 and len(calls) == 51  # +1 warm-up, not recorded


async def test_closed_loop_bounded() -> None:
    lat, elapsed = await bench.closed_loop(lambda: asyncio.sleep(0.001), concurrency=4, duration_s=30, max_requests=40)
    assert len(lat) == 40 and elapsed < 5


def test_markdown_renders_all_sections() -> None:
    batches = [
        {
            "model": "gnn_ranker",
            "batch": 1,
            "candidates": 200,
            "ort_p50_ms": 1.0,
            "ort_p95_ms": 2.0,
            "triton_p50_ms": 6.0,
            "triton_p95_ms": 9.0,
            "triton_over_ort": 6.0,
            "ort_ms_per_scenario": 1.0,
            "triton_ms_per_scenario": 6.0,
        }
    ]
    dyn = [
        {
            "model": "gnn_ranker",
            "concurrency": 4,
            "requests": 100,
            "triton_rps": 300.0,
            "triton_p50_ms": 12.0,
            "triton_p99_ms": 30.0,
            "avg_batch_formed": float("nan"),
            "ort_serial_b1_rps": 900.0,
            "ort_prebatched_rps": 2000.0,
        }
    ]
    expl = [
        {
            "mode": "Search explain=false",
            "requests": 10,
            "p50_ms": 40.0,
            "p95_ms": 60.0,
            "mean_ms": 45.0,
            "errors": 0,
            "degraded": 0,
            "explained_results_per_response": 0.0,
        },
        {
            "mode": "Search explain=true",
            "requests": 10,
            "p50_ms": 100.0,
            "p95_ms": 150.0,
            "mean_ms": 110.0,
            "errors": 1,
            "degraded": 2,
            "explained_results_per_response": 20.0,
        },
        {
            "mode": "ExplainResult, 1 of its results",
            "requests": 10,
            "p50_ms": 16.0,
            "p95_ms": 20.0,
            "mean_ms": 17.0,
            "errors": 0,
            "degraded": 0,
            "explained_results_per_response": 1.0,
        },
    ]
    meta = {"finished": "now", "machine": "m", "inputs": "SYNTHETIC", "triton": "t", "ort_threads": 1}
    md = bench.markdown(meta, batches, dyn, expl)
    assert "| gnn_ranker | 1 | 1.00 | 2.00 | 6.00 | 9.00 | 6.00x |" in md
    assert "| gnn_ranker | 4 | 100 | 300 | 12.00 | 30.00 | - |" in md
    assert "| Search explain=true | 10 | 100.0 | 150.0 | 110.0 | 1 | 2 | 20.0 | 2.50x |" in md
    assert "| ExplainResult, 1 of its results | 10 | 16.0 | 20.0 | 17.0 | 0 | 0 | 1.0 | 0.40x |" in md
    assert "Not measured" in bench.markdown(meta, batches, dyn, [])


def test_main_refuses_without_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "REPOSITORY", tmp_path)
    assert bench.missing_models() == list(ranker_names())
    assert bench.main(["--quick", "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "bench.md").exists()
