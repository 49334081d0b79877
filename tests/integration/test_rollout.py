"""Rollout and rollback under closed-loop load: real Triton (explicit model control) and the four services.

A private artifacts dir and model repository hold the checkout's current bundle N and a bundle N+1 (same weights,
linked as Triton version N+1, a different fusion file: what is measured here is the switch, not the training).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from shop.gateway.v1 import gateway_service_pb2 as gpb
from shop.gateway.v1 import gateway_service_pb2_grpc as gpb_grpc

from libs.bundles import BUNDLE_MODEL, load_bundle
from libs.catalog.store import load_dataset
from libs.config import REPOSITORY, artifacts_dir
from libs.model_io import FUSION_FILE
from libs.rankers import specs
from libs.triton.launcher import TritonServer
from libs.triton.repository import load_versions, served_versions
from tests.integration.test_explain_result import check_explains_the_served_scores, error_info
from tools.rollout import rollout
from libs.stack import SERVICES, Stack
from training.bundles import link_model_version, private_copy, write_bundle

CONCURRENCY = 4


def _private_copy(tmp: Path) -> tuple[Path, Path, str, str]:
    """(artifacts dir, repository, bundle N id, bundle N+1 id)."""
    root, repository = private_copy(artifacts_dir(), REPOSITORY, tmp)
    current = load_bundle(root)
    n = current.number
    for name in specs():
        link_model_version(repository, name, n, n + 1)
    fusion = json.loads((current.path / FUSION_FILE).read_text())
    fusion["weights"] = {m: round(1.0 / len(fusion["weights"]), 4) for m in fusion["weights"]}
    (tmp / FUSION_FILE).write_text(json.dumps(fusion))
    files = {rel: current.path / rel for rel in current.manifest["files"]} | {FUSION_FILE: tmp / FUSION_FILE}
    nxt = write_bundle(root, n + 1, files, {"events": {"count": 0}}, parent=current.id, make_current=False)
    return root, repository, current.id, nxt.id


async def _closed_loop(addr: str, users: list[str], stop: asyncio.Event, log: list[dict]) -> None:
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = gpb_grpc.GatewayServiceStub(channel)

        async def worker(k: int) -> None:
            i = k
            while not stop.is_set():
                started = time.monotonic()
                user = users[i % len(users)]
                i += CONCURRENCY
                try:
                    if i % 3:
                        reply = await stub.Recommend(gpb.RecommendRequest(user_id=user, page_size=10), timeout=10)
                    else:
                        reply = await stub.Search(
                            gpb.SearchRequest(query="lantern", user_id=user, page_size=10), timeout=10
                        )
                    versions = {v.name: v.version for v in reply.model_versions}
                    log.append(
                        {
                            "start": started,
                            "end": time.monotonic(),
                            "code": "OK",
                            "versions": versions,
                            "degraded": len(reply.degradations),
                        }
                    )
                except grpc.aio.AioRpcError as exc:
                    log.append({"start": started, "end": time.monotonic(), "code": exc.code().name, "versions": {}})

        await asyncio.gather(*(worker(k) for k in range(CONCURRENCY)))


def _wait_status(addrs: list[str], status: int, timeout_s: float = 15.0) -> list[str]:
    """The services whose overall health reached `status` within `timeout_s`."""
    reached: list[str] = []
    deadline = time.monotonic() + timeout_s
    for addr in addrs:
        with grpc.insecure_channel(addr) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status == status:
                    reached.append(addr)
                    break
                time.sleep(0.2)
    return reached


def _phase(log: list[dict], after: float, before: float) -> list[dict]:
    return [r for r in log if r["start"] >= after and r["end"] <= before]


async def test_rollout_then_rollback_under_load_fail_nothing_and_move_the_versions(tmp_path):
    """Then Triton drops the served bundle's versions: every inner service turns NOT_SERVING."""
    root, repository, old, new = _private_copy(tmp_path)
    n = load_bundle(root, old).number
    triton = TritonServer(
        model_repository=repository, versions={m: str(n) for m in specs()}, log_path=tmp_path / "triton.log"
    ).start()
    stack = Stack(
        env={
            "SHOP_ARTIFACTS_DIR": str(root),
            "SHOP_TRITON_URL": triton.grpc_url,
            "SHOP_EVENTS_DB": str(tmp_path / "events.sqlite3"),
        },
        log_dir=tmp_path / "logs",
    )
    try:
        stack.start(with_triton=False)
        gateway = gpb_grpc.GatewayServiceStub(grpc.insecure_channel(stack.addresses["gateway"]))
        served_by_old = gateway.Recommend(gpb.RecommendRequest(user_id="17850", page_size=20), timeout=20)
        users = load_dataset(root).customers["user_id"].astype(str).tolist()[:200]
        services = [stack.addresses[s] for s in SERVICES[:-1]]
        log: list[dict] = []
        stop = asyncio.Event()
        load = asyncio.create_task(_closed_loop(stack.addresses["gateway"], users, stop, log))
        await asyncio.sleep(3)
        t_roll = time.monotonic()
        await asyncio.to_thread(rollout, triton.grpc_url, services, new, False, "cpu", 120.0, root, repository)
        t_rolled = time.monotonic()
        assert served_versions(triton.grpc_url)["gnn_ranker"] == [str(n + 1)]  # old version unloaded after
        # "Why this?" on a response bundle N served: never a score from N+1 (blocking calls off the load's loop)
        with pytest.raises(grpc.RpcError) as gone:
            await asyncio.to_thread(
                gateway.ExplainResult,
                gpb.ExplainResultRequest(
                    attribution_token=served_by_old.attribution_token,
                    product_ids=[served_by_old.results[0].product.product_id],
                ),
                timeout=20,
            )
        served_by_new = await asyncio.to_thread(
            gateway.Recommend, gpb.RecommendRequest(user_id="17850", page_size=20), timeout=20
        )
        await asyncio.to_thread(check_explains_the_served_scores, gateway, served_by_new)
        await asyncio.sleep(3)
        t_back = time.monotonic()
        await asyncio.to_thread(rollout, triton.grpc_url, services, None, True, "cpu", 120.0, root, repository)
        t_backed = time.monotonic()
        await asyncio.to_thread(check_explains_the_served_scores, gateway, served_by_old)  # N is back: explains again
        await asyncio.sleep(3)
        stop.set()
        await load
        # Triton loses the served bundle's versions (only N+1 left): the services say so instead of mixing
        load_versions(triton.grpc_url, {m: [str(n + 1)] for m in specs()}, repository)
        not_serving = await asyncio.to_thread(_wait_status, services, health_pb2.HealthCheckResponse.NOT_SERVING)
    finally:
        stack.stop()
        triton.stop()

    failed = [r for r in log if r["code"] != "OK"]
    before, during = _phase(log, 0, t_roll), _phase(log, t_rolled, t_back)
    after_rollback = _phase(log, t_backed, float("inf"))
    order: list[str] = []  # the bundles responses named, in completion order, repeats collapsed
    for r in sorted(log, key=lambda r: r["end"]):
        if r["code"] == "OK" and (not order or order[-1] != r["versions"][BUNDLE_MODEL]):
            order.append(r["versions"][BUNDLE_MODEL])
    summary = {
        "requests": len(log),
        "failed": len(failed),
        "degraded": sum(r.get("degraded", 0) > 0 for r in log),
        "bundles_in_order": order,
    }
    print("rollout under load:", json.dumps(summary))
    assert not failed, failed[:5]
    assert before and during and after_rollback
    assert {r["versions"][BUNDLE_MODEL] for r in before} == {old}
    assert {(r["versions"][BUNDLE_MODEL], r["versions"]["gnn_ranker"]) for r in during} == {(new, str(n + 1))}
    assert {(r["versions"][BUNDLE_MODEL], r["versions"]["gnn_ranker"]) for r in after_rollback} == {(old, str(n))}
    assert not_serving == services
    assert gone.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(gone.value).reason == "BUNDLE_NOT_LOADED"


@pytest.fixture(autouse=True)
def _bundle_present():
    try:
        load_bundle(artifacts_dir())
    except Exception as exc:
        pytest.skip(f"no current bundle to roll out from: {exc}")
