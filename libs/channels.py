"""Outgoing gRPC channels: retries and keepalive via gRPC's own service config, TLS and bearer token."""

from __future__ import annotations

import json
from collections.abc import Sequence

import grpc

from libs import tracing
from libs.config import SecuritySettings
from libs.security import channel_credentials


def service_config(services: Sequence[str], max_attempts: int = 3) -> str:
    """Retry policy for idempotent reads: transient UNAVAILABLE retried with exponential backoff, within a budget."""
    return json.dumps(
        {
            # Spread calls over every address the (headless) Service resolves to, not just the first.
            "loadBalancingConfig": [{"round_robin": {}}],
            # Retry budget per target: each failure costs a token, each success gives 0.1 back, and retries stop while
            # fewer than half of the 10 tokens are left. An outage then costs about one call per request, not 3.
            "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
            "methodConfig": [
                {
                    "name": [{"service": s} for s in services],
                    "retryPolicy": {
                        "maxAttempts": max_attempts,
                        "initialBackoff": "0.02s",
                        "maxBackoff": "0.2s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ],
        }
    )


CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.enable_retries", 1),
    # A restarted peer is found within a second (gRPC's default reconnect backoff grows to 120 s).
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def _with_metadata(details, metadata):
    return (
        details._replace(metadata=metadata)
        if hasattr(details, "_replace")
        else grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )
    )


class _BearerToken(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, token: str) -> None:
        self.metadata = ("authorization", f"Bearer {token}")

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        metadata = list(client_call_details.metadata or []) + [self.metadata]
        return await continuation(_with_metadata(client_call_details, metadata), request)


class _TraceContext(grpc.aio.UnaryUnaryClientInterceptor):
    """A client span per call, its W3C trace context sent in the metadata (the callee continues the trace)."""

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        method = client_call_details.method
        method = method.decode() if isinstance(method, bytes) else method
        with tracing.span(method, tracing.CLIENT, attributes={"rpc.system": "grpc"}) as span:
            metadata = tracing.inject(list(client_call_details.metadata or []))
            call = await continuation(_with_metadata(client_call_details, metadata), request)
            try:
                await call  # the span lasts until the answer (awaiting a finished call again is free)
            except grpc.aio.AioRpcError as exc:
                tracing.mark_error(span, exc.code().name)
                raise
            tracing.mark_error(span, "OK")
            return call


def open_channel(target: str, services: Sequence[str], security: SecuritySettings | None = None) -> grpc.aio.Channel:
    """An aio channel to `target` whose calls to `services` are retried per the service config."""
    security = security or SecuritySettings()
    options = [*CHANNEL_OPTIONS, ("grpc.service_config", service_config(services))]
    interceptors = [_TraceContext(), *([_BearerToken(security.auth_token)] if security.auth_token else [])]
    creds = channel_credentials(security)
    if creds is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(target, creds, options=options, interceptors=interceptors)
