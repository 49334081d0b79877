"""Admission control and the retry budget, against real in-process gRPC servers on 127.0.0.1."""

import asyncio
import json
import time

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from shop.ranking.v1 import ranking_service_pb2 as rpb
from shop.ranking.v1 import ranking_service_pb2_grpc as rgrpc

from libs.channels import open_channel, service_config
from libs.interceptors import AdmissionInterceptor, ObservabilityInterceptor

RANKING = rpb.DESCRIPTOR.services_by_name["RankingService"].full_name


class _Ranking(rgrpc.RankingServiceServicer):
    def __init__(self, release: asyncio.Event | None = None, fail: bool = False) -> None:
        self.release = release
        self.fail = fail
        self.calls = 0

    async def RankCandidates(self, request, context):
        self.calls += 1
        if self.fail:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        await self.release.wait()
        return rpb.RankCandidatesResponse()


async def _server(servicer, interceptors=()):
    server = grpc.aio.server(interceptors=list(interceptors))
    rgrpc.add_RankingServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def test_past_the_limit_calls_are_resource_exhausted_at_once_and_health_still_answers():
    release = asyncio.Event()
    server, addr = await _server(
        _Ranking(release), [ObservabilityInterceptor("ranking"), AdmissionInterceptor(2, max_waiting=0)]
    )
    try:
        async with grpc.aio.insecure_channel(addr) as channel:
            stub = rgrpc.RankingServiceStub(channel)
            admitted = [
                asyncio.ensure_future(stub.RankCandidates(rpb.RankCandidatesRequest(), timeout=10)) for _ in range(2)
            ]
            await asyncio.sleep(0.3)
            start = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.RankCandidates(rpb.RankCandidatesRequest(), timeout=10)
            assert time.monotonic() - start < 0.5
            assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            status = status_pb2.Status.FromString(dict(info.value.trailing_metadata())["grpc-status-details-bin"])
            assert status.details[0].Unpack(error_details_pb2.RetryInfo())
            check = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            assert check.status == health_pb2.HealthCheckResponse.SERVING
            release.set()
            await asyncio.gather(*admitted)
            await stub.RankCandidates(rpb.RankCandidatesRequest(), timeout=10)  # capacity is given back
    finally:
        await server.stop(None)


async def test_a_burst_waits_briefly_for_a_slot_and_the_queue_is_bounded():
    release = asyncio.Event()
    server, addr = await _server(
        _Ranking(release), [AdmissionInterceptor(1, max_waiting=1, max_wait_s=2.0, calm_s=0.0)]
    )
    try:
        async with grpc.aio.insecure_channel(addr) as channel:
            stub = rgrpc.RankingServiceStub(channel)
            first = asyncio.ensure_future(stub.RankCandidates(rpb.RankCandidatesRequest(), timeout=10))
            await asyncio.sleep(0.2)
            waiter = asyncio.ensure_future(stub.RankCandidates(rpb.RankCandidatesRequest(), timeout=10))
            await asyncio.sleep(0.2)
            with pytest.raises(grpc.aio.AioRpcError) as info:  # the one waiting place is taken
                await stub.RankCandidates(rpb.RankCandidatesRequest(), timeout=10)
            assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            release.set()
            await asyncio.gather(first, waiter)  # the waiter got the slot the first call gave back
            release.clear()
            held = asyncio.ensure_future(stub.RankCandidates(rpb.RankCandidatesRequest(), timeout=10))
            await asyncio.sleep(0.2)
            start = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as info:  # waits at most a quarter of its deadline
                await stub.RankCandidates(rpb.RankCandidatesRequest(), timeout=1.2)
            assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert 0.2 < time.monotonic() - start < 0.6
            release.set()
            await held
    finally:
        await server.stop(None)


async def test_under_sustained_overload_nothing_waits():
    release = asyncio.Event()
    server, addr = await _server(
        _Ranking(release), [AdmissionInterceptor(1, max_waiting=1, max_wait_s=2.0, calm_s=10.0)]
    )
    try:
        async with grpc.aio.insecure_channel(addr) as channel:
            stub = rgrpc.RankingServiceStub(channel)
            held = asyncio.ensure_future(stub.RankCandidates(rpb.RankCandidatesRequest(), timeout=10))
            await asyncio.sleep(0.2)
            with pytest.raises(grpc.aio.AioRpcError):  # waits its 0.5 s (a quarter of 2 s), then is shed
                await stub.RankCandidates(rpb.RankCandidatesRequest(), timeout=2)
            start = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as info:  # a call was just shed: no wait now
                await stub.RankCandidates(rpb.RankCandidatesRequest(), timeout=2)
            assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() - start < 0.2
            release.set()
            await held
    finally:
        await server.stop(None)


async def test_retries_stop_when_the_budget_is_spent():
    assert json.loads(service_config([RANKING]))["retryThrottling"] == {"maxTokens": 10, "tokenRatio": 0.1}
    servicer = _Ranking(fail=True)
    server, addr = await _server(servicer)
    try:
        channel = open_channel(addr, [RANKING])
        stub = rgrpc.RankingServiceStub(channel)
        for _ in range(30):
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.RankCandidates(rpb.RankCandidatesRequest(), timeout=5)
        await channel.close()
    finally:
        await server.stop(None)
    # Without the budget: 3 attempts per call = 90. With it, retries stop after the first few failures.
    assert 30 <= servicer.calls <= 40
