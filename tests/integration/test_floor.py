"""The in-process floor runs the real cores on the real models and answers like the gateway."""

import pytest
from shop.gateway.v1 import gateway_service_pb2 as gpb

from loadtest import driver
from loadtest.floor import InProcessShop

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shop():
    s = InProcessShop(deadline_s=30.0)
    yield s
    s.close()


async def test_floor_serves_the_request_mix_with_stage_times(shop):
    items = driver.request_messages()[:12]
    assert {rpc for rpc, _ in items} == {"Search", "Recommend"}
    samples, _ = await driver.run_step(shop.call, items, concurrency=2, duration_s=60.0, max_requests=12)
    assert [s.code for s in samples] == ["OK"] * 12
    stages = shop.times.summary()
    assert set(stages) >= {"retrieval", "ranking"} and all(v["calls"] > 0 for v in stages.values())


async def test_floor_explains_like_the_gateway(shop):
    code, degraded = await shop.call(
        "Search", gpb.SearchRequest(query="lunch bag", user_id="17850", page_size=5, explain=True)
    )
    assert code == "OK" and not degraded
    assert shop.times.summary()["explanation"]["calls"] >= 1
