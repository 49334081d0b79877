"""The driver's closed loop and payload mix, against fake targets (no processes, no network)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from loadtest import driver, payloads


async def test_run_step_keeps_concurrency_and_stops_at_deadline() -> None:
    in_flight, peak = 0, 0

    async def call(rpc: str, payload: object) -> tuple[str, bool]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return ("OK", payload == "degraded")

    items = [("Search", "a"), ("Recommend", "degraded")]
    samples, elapsed = await driver.run_step(call, items, concurrency=4, duration_s=0.2)
    assert peak == 4
    assert 0.2 <= elapsed < 0.5
    assert 40 <= len(samples) <= 90  # ~4 / 10 ms * 0.2 s
    assert Counter(s.rpc for s in samples)["Recommend"] == sum(s.degraded for s in samples)


async def test_run_step_bounded_by_max_requests() -> None:
    async def call(rpc: str, payload: object) -> tuple[str, bool]:
        await asyncio.sleep(0)
        return ("UNAVAILABLE", False)

    samples, _ = await driver.run_step(call, [("Search", 1)], concurrency=8, duration_s=60, max_requests=100)
    assert len(samples) == 100 and {s.code for s in samples} == {"UNAVAILABLE"}


def test_mix_interleaves_by_weight() -> None:
    items = driver.mix({"Search": list("abcdef"), "Recommend": [1, 2]}, {"Search": 3, "Recommend": 1})
    assert [r for r, _ in items[:8]] == ["Search"] * 3 + ["Recommend"] + ["Search"] * 3 + ["Recommend"]
    assert [p for r, p in items if r == "Search"] == list("abcdef")


def test_parse_args_defaults() -> None:
    args = driver.parse_args([])
    assert args.levels == [1, 4, 16] and args.duration == 15.0 and args.max_requests > 0
    assert driver.parse_args(["--levels", "2,8", "--duration", "1"]).levels == [2, 8]


def test_write_reports(tmp_path: Path) -> None:
    from loadtest.stats import Sample, attach_ceiling, rows_for_step

    rows = attach_ceiling(
        rows_for_step("echo", 1, 1.0, [Sample("Search", 0.001)] * 100)
        + rows_for_step("gateway", 1, 1.0, [Sample("Search", 0.02)] * 10)
    )
    meta = {
        "finished": "now",
        "machine": "test",
        "duration_s": 1,
        "echo_duration_s": 1,
        "timeout_s": 5,
        "payloads": "x",
        "stack": "fake",
    }
    driver.write_reports(rows, meta, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"load.md", "load.json", "load.png"}
    assert "| gateway | mix | 1 | 10 |" in (tmp_path / "load.md").read_text()


@pytest.mark.parametrize("rpc", payloads.RPCS)
def test_payload_files_parse_as_gateway_requests(rpc: str) -> None:
    items = [(r, m) for r, m in driver.request_messages() if r == rpc]
    assert len(items) >= 400
    assert all(m.page_size == payloads.PAGE_SIZE for _, m in items)


def test_main_refuses_without_gateway_or_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "is_serving", lambda addr, timeout_s=1.0: False)
    monkeypatch.setattr(driver, "REPOSITORY", tmp_path)  # no */1/model.onnx there
    assert driver.main(["--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()
