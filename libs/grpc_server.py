"""One bootstrap for every service: grpc.aio server with health, reflection, metrics, error
mapping, optional TLS/mTLS and bearer auth, JSON logs, and graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from libs import logs, readiness, tracing
from libs.config import ServiceSettings, TracingSettings
from libs.interceptors import (
    HEALTH_PREFIX,
    OPEN_PREFIXES,
    AdmissionInterceptor,
    BearerAuthInterceptor,
    ObservabilityInterceptor,
)
from libs.security import server_credentials

log = logging.getLogger(__name__)


@dataclass
class Registration:
    """What a service adds to the server: a function that registers servicers and the full names."""

    register: Callable[[grpc.aio.Server], None]
    service_names: Sequence[str]
    # Full method names that need the write token (SecuritySettings.catalog_write_token), e.g. catalogue writes.
    privileged: frozenset[str] = frozenset()


async def build_server(
    name: str, settings: ServiceSettings, listen_addr: str, registration: Registration
) -> tuple[grpc.aio.Server, health.aio.HealthServicer, int]:
    interceptors: list[grpc.aio.ServerInterceptor] = []
    sec = settings.security
    if sec.auth_token or sec.catalog_write_token:
        open_prefixes = OPEN_PREFIXES if sec.open_reflection else (HEALTH_PREFIX,)
        interceptors.append(
            BearerAuthInterceptor(sec.auth_token, open_prefixes, sec.catalog_write_token, registration.privileged)
        )
    interceptors.append(ObservabilityInterceptor(name))
    interceptors.append(AdmissionInterceptor(settings.max_in_flight))  # inside: rejections are counted and logged
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
            # Clients reconnect now and then, so they find pods the autoscaler adds (with round_robin channels).
            ("grpc.max_connection_age_ms", 300_000),
            ("grpc.max_connection_age_grace_ms", 30_000),
        ],
    )
    registration.register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [
            *registration.service_names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    creds = server_credentials(settings.security)
    port = server.add_secure_port(listen_addr, creds) if creds else server.add_insecure_port(listen_addr)
    if port == 0:
        raise RuntimeError(f"could not bind {listen_addr}")
    return server, health_servicer, port


def health_server(health_servicer: health.aio.HealthServicer, addr: str) -> tuple[grpc.aio.Server, int]:
    """A plaintext listener with nothing but grpc.health.v1 (the same statuses as the main port), for kubelet's gRPC
    probes, which cannot speak TLS. Health reveals no data, so it needs neither TLS nor the token."""
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(addr)
    if port == 0:
        raise RuntimeError(f"could not bind {addr}")
    return server, port


def call_timeout(context: grpc.aio.ServicerContext, default_s: float) -> float:
    """Seconds a call may still spend: the caller's deadline less 10 ms kept for the answer (at least 1 ms), or
    `default_s` when the caller set none."""
    remaining = context.time_remaining()
    return default_s if remaining is None else max(remaining - 0.01, 0.001)


async def _always_ready() -> bool:
    return True


async def serve(
    name: str,
    settings: ServiceSettings,
    listen_addr: str,
    registration: Registration,
    on_stop: Callable[[], Awaitable[None]] | None = None,
    ready: readiness.Check | None = None,
    background: Callable[[health.aio.HealthServicer, Sequence[str]], Awaitable[None]] | None = None,
) -> None:
    """Run until SIGTERM/SIGINT, then drain in-flight RPCs for `shutdown_grace_s`.

    `ready`: what the service needs to answer (libs.readiness); health follows it. None = ready once listening.
    `background(health, service names)` runs while serving (libs.bundle_switch follows the current bundle and
    reports it under its own health names; readiness stays with `ready`).
    """
    logs.configure(settings.log_level, name, settings.log_key.get_secret_value().encode() if settings.log_key else None)
    tracing.configure(name, TracingSettings())
    server, health_servicer, port = await build_server(name, settings, listen_addr, registration)
    probes = health_server(health_servicer, settings.health_addr)[0] if settings.health_addr else None
    if settings.metrics_port >= 0:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    names = ["", *registration.service_names]
    for svc in names:
        await health_servicer.set(svc, health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.start()
    if probes is not None:
        await probes.start()
    await health_servicer.set(readiness.LIVENESS, health_pb2.HealthCheckResponse.SERVING)
    watcher = asyncio.create_task(readiness.watch(health_servicer, names, ready or _always_ready))
    task = asyncio.create_task(background(health_servicer, names)) if background else None
    host = listen_addr.rsplit(":", 1)[0]
    log.info("serving", extra=logs.fields(addr=f"{host}:{port}", tls=server_credentials(settings.security) is not None))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down", extra=logs.fields(grace_s=settings.shutdown_grace_s))
    if task is not None:
        task.cancel()
    # Fail readiness first so load balancers stop sending, then drain.
    watcher.cancel()
    await health_servicer.enter_graceful_shutdown()
    await server.stop(settings.shutdown_grace_s)
    if probes is not None:
        await probes.stop(None)
    if on_stop is not None:
        await on_stop()
    log.info("stopped")
