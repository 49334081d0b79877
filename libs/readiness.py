"""Readiness that tells the truth: checks of what a service needs, and the loop that turns them into gRPC health.

Health service names (grpc.health.v1):
- "" and each served service's full name: readiness. NOT_SERVING until the first check passes, and again whenever
  a dependency the service needs is down; Kubernetes readiness probes and libs/stack.py read it.
- "liveness": SERVING while the process runs its event loop (liveness and startup probes): a dependency outage
  must take a pod out of rotation, not get it restarted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from libs import logs

log = logging.getLogger(__name__)

LIVENESS = "liveness"
# Poll period and per-check timeout: a dependency's recovery is seen within 2 s (the bound).
INTERVAL_S = 0.5
CHECK_TIMEOUT_S = 1.0
DOWN_AFTER = 2

Check = Callable[[], Awaitable[bool]]


def is_serving(target: str | grpc.Channel, service: str = "", timeout_s: float = CHECK_TIMEOUT_S) -> bool:
    """One blocking grpc.health.v1 Check: does the server at `target` (a plaintext address, or an open channel)
    report SERVING for `service` ("" = readiness)? Unreachable or slow = False."""
    if isinstance(target, str):
        with grpc.insecure_channel(target) as channel:
            return is_serving(channel, service, timeout_s)
    try:
        reply = health_pb2_grpc.HealthStub(target).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
        )
    except grpc.RpcError:
        return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def grpc_health_check(channel: grpc.aio.Channel, service: str = "") -> Check:
    """A peer's readiness, read from its gRPC health service."""
    stub = health_pb2_grpc.HealthStub(channel)

    async def check() -> bool:
        try:
            resp = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=CHECK_TIMEOUT_S)
        except grpc.aio.AioRpcError:
            return False
        return resp.status == health_pb2.HealthCheckResponse.SERVING

    return check


class Dependencies:
    """Ready when the `required` peers are ready, and only after every peer was ready once.

    The gateway uses it: it can answer (degraded) without ranking or explanation, but it does not report SERVING at
    start-up before all of its inner services do, so the first callers are not met by connection errors.
    """

    def __init__(self, checks: Mapping[str, Check], required: Iterable[str]) -> None:
        self.checks = dict(checks)
        self.required = set(required)
        self.started = False

    async def __call__(self) -> bool:
        results = dict(zip(self.checks, await asyncio.gather(*(c() for c in self.checks.values()))))
        self.started = self.started or all(results.values())
        return self.started and all(results[n] for n in self.required)


async def watch(
    health_servicer: health.aio.HealthServicer,
    names: Sequence[str],
    ready: Check,
    interval_s: float = INTERVAL_S,
    down_after: int = DOWN_AFTER,
) -> None:
    """Set `names` SERVING / NOT_SERVING from `ready()` every `interval_s`, logging each change; runs until cancelled.

    SERVING as soon as a check passes; NOT_SERVING once `down_after` checks in a row failed, so one health check
    that timed out on a busy machine does not flap readiness (seen while a neighbour process was loading)."""
    serving: bool | None = None
    failures = 0
    while True:
        try:
            ok = bool(await asyncio.wait_for(ready(), CHECK_TIMEOUT_S))
        except Exception as exc:  # noqa: BLE001 - a check that fails or hangs means "not ready", never a dead loop
            log.debug("readiness check failed: %r", exc)
            ok = False
        failures = 0 if ok else failures + 1
        if not ok and serving and failures < down_after:
            ok = True
        if ok != serving:
            status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
            for name in names:
                await health_servicer.set(name, status)
            log.info("readiness changed", extra=logs.fields(serving=ok))
            serving = ok
        await asyncio.sleep(interval_s)
