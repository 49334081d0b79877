"""Container HEALTHCHECK: one grpc.health.v1 Check against this container's own server.

`python healthcheck.py [host:port]` exits 0 when the server answers SERVING, 1 otherwise. Kubernetes uses its native
gRPC probes instead; this is for `docker run` / compose, where no grpc_health_probe binary can be downloaded.
"""
from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str]) -> int:
    addr = argv[1] if len(argv) > 1 else os.environ.get("SHOP_HEALTH_ADDR", "127.0.0.1:50051")
    try:
        with grpc.insecure_channel(addr) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
    except grpc.RpcError as exc:
        print(f"unhealthy: {exc.code().name}", file=sys.stderr)
        return 1
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
