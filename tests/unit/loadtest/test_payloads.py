"""Payload generation (shares, determinism, validity) and the committed ghz files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest import payloads

USERS = [str(12_000 + i) for i in range(300)]
QUERIES = [f"query {i}" for i in range(1000)]


def test_search_payloads_shares_and_determinism() -> None:
    out = payloads.search_payloads(QUERIES, USERS)
    assert out == payloads.search_payloads(QUERIES, USERS)
    assert [p["query"] for p in out] == QUERIES
    assert 0.65 < sum("userId" in p for p in out) / len(out) < 0.75
    assert 0.15 < sum(p.get("explain", False) for p in out) / len(out) < 0.25
    assert all(p["userId"] in USERS for p in out if "userId" in p)


def test_recommend_payloads_cold_start_ids_are_valid_but_unknown() -> None:
    out = payloads.recommend_payloads(USERS, n=2000)
    cold = [p["userId"] for p in out if p["userId"] not in USERS]
    assert 0.03 < len(cold) / len(out) < 0.07
    assert all(u.isdigit() and len(u) <= 16 for u in (p["userId"] for p in out))


def test_read_queries_dedups_and_trims(tmp_path: Path) -> None:
    f = tmp_path / "query.csv"
    f.write_text("query_id\tquery\tquery_class\n0\tsalon  chair\tA\n1\tsalon chair\tA\n2\t\tB\n3\tnull\tC\n")
    assert payloads.read_queries(f) == ["salon chair", "null"]  # "null" is a query, not a missing value


def test_committed_payloads_come_from_real_data() -> None:
    search, recommend = payloads.load("Search"), payloads.load("Recommend")
    assert len(search) >= 400 and len(recommend) == payloads.N_RECOMMEND
    real = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "wands_queries" / "query.csv"
    if real.is_file():
        assert [p["query"] for p in search] == payloads.read_queries(real)


@pytest.mark.parametrize("rpc", payloads.RPCS)
@pytest.mark.parametrize("level", payloads.GHZ_LEVELS)
def test_ghz_configs_are_current(rpc: str, level: int) -> None:
    path = payloads.GHZ_DIR / f"{rpc.lower()}-c{level}.json"
    cfg = json.loads(path.read_text())
    assert cfg == payloads.ghz_config(rpc, level), "run `python -m loadtest.payloads`"
    assert "proto" not in cfg and "protoset" not in cfg  # reflection
    assert (payloads.ROOT / cfg["data-file"]).is_file()
    assert cfg["output"].startswith("reports/load") and cfg["format"] == "json"
    assert cfg["duration"] and cfg["cpus"] >= 1 and cfg["concurrency"] == level
