import asyncio

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from libs.readiness import Dependencies, grpc_health_check, watch

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


class _Flag:
    def __init__(self, value: bool) -> None:
        self.value = value

    async def __call__(self) -> bool:
        return self.value


async def test_dependencies_wait_for_every_peer_once_then_only_for_the_required_ones():
    retrieval, ranking = _Flag(True), _Flag(False)
    ready = Dependencies({"retrieval": retrieval, "ranking": ranking}, required=["retrieval"])
    assert not await ready()  # start-up: ranking not up yet
    ranking.value = True
    assert await ready()
    ranking.value = False
    assert await ready()  # later a ranking outage only degrades answers
    retrieval.value = False
    assert not await ready()


async def _status(servicer, name=""):
    return (await servicer.Check(health_pb2.HealthCheckRequest(service=name), None)).status


async def test_watch_follows_the_check_within_a_second_and_survives_failing_checks():
    servicer = health.aio.HealthServicer()
    state = {"ok": False}

    async def ready():
        if state["ok"] is None:
            raise RuntimeError("check crashed")
        return state["ok"]

    task = asyncio.create_task(watch(servicer, ["", "svc"], ready, interval_s=0.05))
    try:
        await asyncio.sleep(0.2)
        assert await _status(servicer) == NOT_SERVING
        state["ok"] = True
        await asyncio.sleep(0.2)
        assert await _status(servicer) == SERVING and await _status(servicer, "svc") == SERVING
        state["ok"] = None
        await asyncio.sleep(0.2)
        assert await _status(servicer) == NOT_SERVING
        assert not task.done()
    finally:
        task.cancel()


async def test_grpc_health_check_reads_a_peer_and_treats_no_answer_as_not_ready():
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            check = grpc_health_check(channel)
            await servicer.set("", NOT_SERVING)
            assert not await check()
            await servicer.set("", SERVING)
            assert await check()
            await server.stop(None)
            assert not await check()
    finally:
        await server.stop(None)


async def test_one_missed_check_does_not_flap_readiness():
    answers = [True, False, True, False, False]
    calls = []
    changes = []

    class Recorder:
        async def set(self, name, status):
            changes.append((len(calls), status))

    async def ready():
        calls.append(None)
        if len(calls) > len(answers):
            await asyncio.Event().wait()  # hang: the test is over
        return answers[len(calls) - 1]

    task = asyncio.create_task(watch(Recorder(), [""], ready, interval_s=0.01, down_after=2))
    await asyncio.sleep(0.5)
    task.cancel()
    # SERVING after the first check; the lone failure (check 2) changes nothing; two in a row (4, 5) do.
    assert changes == [(1, SERVING), (5, NOT_SERVING)]
