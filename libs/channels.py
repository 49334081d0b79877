"""Outgoing gRPC channels: retries and keepalive via gRPC's own service config, TLS and bearer token."""
from __future__ import annotations

import json
from collections.abc import Sequence

import grpc

from libs.config import SecuritySettings
from libs.security import channel_credentials


def service_config(services: Sequence[str], max_attempts: int = 3) -> str:
    """Retry policy for idempotent reads: transient UNAVAILABLE retried with exponential backoff, within a budget."""
    return json.dumps({
        # Spread calls over every address the (headless) Service resolves to, not just the first.
        "loadBalancingConfig": [{"round_robin": {}}],
        # Retry budget per target: each failure costs a token, each success gives 0.1 back, and retries stop while
        # fewer than half of the 10 tokens are left. An outage then costs about one call per request, not 3.
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
        "methodConfig": [{
            "name": [{"service": s} for s in services],
            "retryPolicy": {
                "maxAttempts": max_attempts,
                "initialBackoff": "0.02s",
                "maxBackoff": "0.2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }],
    })


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


class _BearerToken(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, token: str) -> None:
        self.metadata = ("authorization", f"Bearer {token}")

    async def intercept_unary_unary(self, continuation, client_call_details, request):  # noqa: ANN001
        metadata = list(client_call_details.metadata or []) + [self.metadata]
        details = client_call_details._replace(metadata=metadata) if hasattr(client_call_details, "_replace") else \
            grpc.aio.ClientCallDetails(client_call_details.method, client_call_details.timeout, metadata,
                                       client_call_details.credentials, client_call_details.wait_for_ready)
        return await continuation(details, request)


def open_channel(target: str, services: Sequence[str], security: SecuritySettings | None = None) -> grpc.aio.Channel:
    """An aio channel to `target` whose calls to `services` are retried per the service config."""
    security = security or SecuritySettings()
    options = [*CHANNEL_OPTIONS, ("grpc.service_config", service_config(services))]
    interceptors = [_BearerToken(security.auth_token)] if security.auth_token else None
    creds = channel_credentials(security)
    if creds is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(target, creds, options=options, interceptors=interceptors)
