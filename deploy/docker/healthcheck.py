"""Container HEALTHCHECK: one grpc.health.v1 Check against this container's own server.

`python healthcheck.py [host:port]` exits 0 when the server answers SERVING, 1 otherwise. Kubernetes uses its native
gRPC probes instead; this is for `docker run` / compose, where no grpc_health_probe binary can be downloaded.
The images put /app (libs/) on PYTHONPATH.
"""

from __future__ import annotations

import sys

from libs.config import Addresses, ServiceSettings
from libs.readiness import is_serving


def main(argv: list[str]) -> int:
    addr = argv[1] if len(argv) > 1 else ServiceSettings().health_addr or Addresses().gateway
    if is_serving(addr, timeout_s=2.0):
        return 0
    print(f"unhealthy: {addr} does not report SERVING", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
