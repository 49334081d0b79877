"""The fast subset of `make chaos` (loadtest/chaos.py): 1,000 hostile requests at each public service (and 100 at each
inner one),
then Triton killed with SIGKILL under load and restarted by the supervisor. The full suite (10,000 requests,
inner-service kills, overload, soak) is `make chaos`."""

from __future__ import annotations

import asyncio
import threading

import pytest

from loadtest import faults, hostile


@pytest.fixture(scope="module")
def supervised(own_stack):
    stop = threading.Event()
    thread = threading.Thread(target=own_stack.supervise, args=(stop, 0.2), daemon=True)
    thread.start()
    yield own_stack
    stop.set()
    thread.join()


def _assert_on_target(figures):
    missed = [f.line() for f in figures if not f.ok]
    assert not missed, "\n".join(missed)


def test_hostile_requests_never_end_internal_unknown_or_unavailable(supervised):
    figures, details = asyncio.run(hostile.fuzz_stack(supervised, 1000))
    _assert_on_target(figures)
    assert {
        "shop.gateway.v1.GatewayService",
        "shop.retrieval.v1.RetrievalService",
        "shop.ranking.v1.RankingService",
        "shop.explanation.v1.ExplanationService",
    } <= set(details)
    codes = details["shop.gateway.v1.GatewayService"]["codes"]
    assert codes.get("INVALID_ARGUMENT", 0) > 100 and codes.get("OK", 0) > 10 and codes.get("RESOURCE_EXHAUSTED", 0) > 0


def test_triton_killed_under_load_degrades_recovers_and_leaves_no_orphan(supervised):
    figures, details = asyncio.run(faults.triton_kill(supervised))
    _assert_on_target(figures)
    assert [name for name, _, _ in supervised.restarts] == ["triton"]
