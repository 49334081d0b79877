"""What the fault suite's phases share (loadtest/hostile.py, loadtest/faults.py, loadtest/chaos.py): a report figure
and the gateway's service descriptor."""

from __future__ import annotations

from dataclasses import dataclass

from grpc_health.v1 import health_pb2
from shop.gateway.v1 import gateway_service_pb2 as gpb

GATEWAY = gpb.DESCRIPTOR.services_by_name["GatewayService"]
SERVING = health_pb2.HealthCheckResponse.SERVING


@dataclass
class Figure:
    name: str
    value: object
    target: str
    ok: bool
    # A latency target: `make chaos` reports it; tests assert only that it was measured, since a shared machine's
    # load moves it (tests check behaviour, benchmarks print timings).
    timed: bool = False

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.value}  (target {self.target})"
