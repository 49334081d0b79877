"""A bare grpc.aio server: the machine's gRPC ceiling that `make load` compares the gateway against.

    python -m loadtest.echo_server --port 0     # prints "listening 127.0.0.1:<port>", SIGTERM stops it

One unary method, /loadtest.Echo/Echo, registered as a generic handler with identity (de)serialisers: it returns the
request bytes untouched, so a call costs exactly HTTP/2 framing + the gRPC Python stack, with no protobuf work and no
application logic. Plus grpc.health.v1, so the driver waits for it the same way as for the services.
Same server flavour as the services (grpc.aio, one process) so the ratio reads as "share of what Python gRPC can do
on this machine".
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

METHOD = "/loadtest.Echo/Echo"


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


def handler() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        "loadtest.Echo",
        {
            "Echo": grpc.unary_unary_rpc_method_handler(_echo),  # no deserializer/serializer: bytes in, bytes out
        },
    )


async def serve(host: str, port: int) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler(),))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    print(f"listening {host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")  # loopback only: never expose a load target
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
