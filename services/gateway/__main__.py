"""Run the gateway: `python -m services.gateway` (address from SHOP_GATEWAY_ADDR, default 127.0.0.1:50051)."""
from __future__ import annotations

import asyncio

from pydantic import Field, SecretStr
from shop.explanation.v1 import explanation_service_pb2 as xpb
from shop.gateway.v1 import gateway_service_pb2 as gpb
from shop.gateway.v1 import gateway_service_pb2_grpc as gpb_grpc
from shop.ranking.v1 import ranking_service_pb2 as rpb
from shop.retrieval.v1 import retrieval_service_pb2 as qpb

from libs.catalog.store import load_dataset
from libs.channels import open_channel
from libs.config import EventStoreSettings, ExperimentSettings, ServiceSettings
from libs.events import open_event_store
from libs.events.retention import prune_periodically
from libs.readiness import Dependencies, grpc_health_check
from libs.grpc_server import Registration, serve
from services.gateway.clients import ExplanationClient, RankingClient, RetrievalClient
from libs.gateway import GatewayCore
from libs.experiments import AttributionTokens, Variants
from services.gateway.servicer import GatewayServicer


class GatewaySettings(ServiceSettings):
    events: EventStoreSettings = Field(default_factory=EventStoreSettings)
    experiment: ExperimentSettings = Field(default_factory=ExperimentSettings)
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
    events = open_event_store(settings.events, settings.artifacts_dir)
    retention = asyncio.create_task(prune_periodically(events, settings.events.retention_days))
    channels = [
        open_channel(addrs.retrieval, [_full_name(qpb, "RetrievalService")], sec),
        open_channel(addrs.ranking, [_full_name(rpb, "RankingService")], sec),
        open_channel(addrs.explanation, [_full_name(xpb, "ExplanationService")], sec),
    ]
    core = GatewayCore(RetrievalClient(channels[0]), RankingClient(channels[1], settings.diversity),
                       ExplanationClient(channels[2]), events, Variants.parse(settings.experiment.variants), known.__contains__,
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
