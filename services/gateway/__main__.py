"""Run the gateway: `python -m services.gateway` (address from SHOP_GATEWAY_ADDR, default 127.0.0.1:50051)."""
from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import Field, SecretStr
from shop.explanation.v1 import explanation_service_pb2 as xpb
from shop.gateway.v1 import gateway_service_pb2 as gpb
from shop.gateway.v1 import gateway_service_pb2_grpc as gpb_grpc
from shop.ranking.v1 import ranking_service_pb2 as rpb
from shop.retrieval.v1 import retrieval_service_pb2 as qpb

from libs.catalog.store import load_dataset
from libs.channels import open_channel
from libs.config import ServiceSettings
from libs.events import open_event_store
from libs.events.retention import prune_periodically
from libs.readiness import Dependencies, grpc_health_check
from libs.server import Registration, serve
from services.gateway.clients import ExplanationClient, RankingClient, RetrievalClient
from libs.gateway import GatewayCore
from libs.experiments import AttributionTokens, Variants
from services.gateway.servicer import GatewayServicer


class GatewaySettings(ServiceSettings):
    # PostgreSQL event store shared by every replica (postgresql://user@host:5432/db). Unset = SQLite below.
    events_dsn: SecretStr | None = Field(None, validation_alias="SHOP_EVENTS_DSN")  # may hold a password
    # SQLite event store (WAL), used when SHOP_EVENTS_DSN is unset. Default under the artifacts dir.
    events_db: Path | None = Field(None, validation_alias="SHOP_EVENTS_DB")
    # PostgreSQL connections per replica.
    events_pool_max: int = Field(8, ge=1, validation_alias="SHOP_EVENTS_POOL_MAX")
    # Per-call limit for the event store (pool wait, connect, statement; SQLite lock wait), seconds.
    events_timeout_s: float = Field(2.0, gt=0, validation_alias="SHOP_EVENTS_TIMEOUT_S")
    # Events older than this many days (by event time) are deleted at start-up and daily; 0 = keep forever.
    events_retention_days: float = Field(400, ge=0, validation_alias="SHOP_EVENTS_RETENTION_DAYS")
    # Ranking variants and traffic shares, e.g. "fused:0.9,gnn_only:0.1".
    variants: str = Field("fused:1", validation_alias="SHOP_VARIANTS")
    # Deadline used when the caller sets none, seconds.
    default_deadline_s: float = Field(2.0, validation_alias="SHOP_DEFAULT_DEADLINE_S")
    # MMR diversity weight passed to ranking (0 = off).
    diversity: float = Field(0.0, validation_alias="SHOP_DIVERSITY")
    # HMAC key of attribution tokens (>= 16 bytes). Unset = a random key of this process: tokens then stop
    # verifying after a restart and across replicas, so production mounts one from a Secret.
    token_key: SecretStr | None = Field(None, validation_alias="SHOP_TOKEN_KEY")


def _full_name(module: object, service: str) -> str:
    return module.DESCRIPTOR.services_by_name[service].full_name


async def main() -> None:
    settings = GatewaySettings()
    addrs, sec = settings.addresses, settings.security
    dataset = load_dataset(settings.artifacts_dir)
    known = set(dataset.items["product_id"])
    dsn = settings.events_dsn.get_secret_value() if settings.events_dsn else None
    events = open_event_store(dsn, settings.events_db or settings.artifacts_dir / "events"
                              / "events.sqlite3", settings.events_pool_max, settings.events_timeout_s)
    retention = asyncio.create_task(prune_periodically(events, settings.events_retention_days))
    channels = [
        open_channel(addrs.retrieval, [_full_name(qpb, "RetrievalService")], sec),
        open_channel(addrs.ranking, [_full_name(rpb, "RankingService")], sec),
        open_channel(addrs.explanation, [_full_name(xpb, "ExplanationService")], sec),
    ]
    core = GatewayCore(RetrievalClient(channels[0]), RankingClient(channels[1], settings.diversity),
                       ExplanationClient(channels[2]), events, Variants.parse(settings.variants), known.__contains__,
                       AttributionTokens(settings.token_key.get_secret_value().encode()) if settings.token_key
                       else AttributionTokens.ephemeral())
    servicer = GatewayServicer(core, settings.default_deadline_s)

    async def close() -> None:
        retention.cancel()
        for ch in channels:
            await ch.close()
        events.close()

    await serve("gateway", settings, addrs.gateway,
                Registration(lambda s: gpb_grpc.add_GatewayServiceServicer_to_server(servicer, s),
                             [_full_name(gpb, "GatewayService")]), on_stop=close,
                # Retrieval is needed for any answer; ranking and explanation only make it better (degradations).
                ready=Dependencies({name: grpc_health_check(ch) for name, ch in
                                    zip(("retrieval", "ranking", "explanation"), channels)}, required=["retrieval"]))


if __name__ == "__main__":
    asyncio.run(main())
