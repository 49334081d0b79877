"""`make load` in miniature against the real stack: the driver measures, reports and leaves nothing running."""

from __future__ import annotations

import json
from pathlib import Path

from loadtest import driver
from libs.stack import Stack


def test_driver_short_run_against_real_stack(stack: Stack, tmp_path: Path) -> None:
    rc = driver.main(
        [
            "--gateway",
            stack.addresses["gateway"],
            "--levels",
            "1,2",
            "--duration",
            "2",
            "--echo-duration",
            "1",
            "--warmup",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    report = json.loads((tmp_path / "load.json").read_text())
    rows = {(r["target"], r["rpc"], r["concurrency"]): r for r in report["rows"]}
    for c in (1, 2):
        gw, echo = rows[("gateway", "mix", c)], rows[("echo", "mix", c)]
        assert gw["requests"] > 0 and echo["rps"] > gw["rps"]  # the bare server is the ceiling
        assert "INTERNAL" not in gw["errors"]  # the gateway degrades or says UNAVAILABLE, never INTERNAL
        assert sum(gw["errors"].values()) < gw["requests"]
        assert 0 < gw["ceiling_share"] < 1
    assert {("gateway", "Search", 1), ("gateway", "Recommend", 1)} <= set(rows)
    assert (tmp_path / "load.png").stat().st_size > 0 and "| gateway | mix | 1 |" in (tmp_path / "load.md").read_text()
