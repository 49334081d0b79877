"""Run the gateway: `python -m services.gateway` (address from SHOP_GATEWAY_ADDR, default 127.0.0.1:50051)."""

from __future__ import annotations

import asyncio

from pydantic import Field, SecretStr
from shop.catalog.v1 import catalog_service_pb2 as cpb
from shop.catalog.v1 import catalog_service_pb2_grpc as cpb_grpc
from shop.explanation.v1 import explanation_service_pb2 as xpb
from shop.gateway.v1 import gateway_service_pb2 as gpb
from shop.gateway.v1 import gateway_service_pb2_grpc as gpb_grpc
from shop.ranking.v1 import ranking_service_pb2 as rpb
from shop.retrieval.v1 import retrieval_service_pb2 as qpb

from libs.catalog.store import load_dataset
from libs.channels import open_channel
from libs.config import ExperimentSettings, StoreSettings
from libs.events import open_event_store
from libs.events.retention import expire_responses, prune_periodically
from libs.products.catalog import Catalog, dataset_products
from libs.products.store import open_catalog_store
from libs.products.view import CatalogView
from libs.readiness import Dependencies, grpc_health_check
from libs.grpc_server import Registration, serve
from services.gateway.clients import ExplanationClient, RankingClient, RetrievalClient
from services.gateway.catalog_servicer import WRITE_METHODS, CatalogServicer
from libs.experiments import AttributionTokens, ExplanationArms, Variants
from libs.gateway import GatewayCore
from libs.on_demand import RESPONSE_TTL_S
from services.gateway.servicer import GatewayServicer


class GatewaySettings(StoreSettings):
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
    events = open_event_store(settings.events, settings.artifacts_dir)
    products = open_catalog_store(settings)
    view = CatalogView(products)
    following = asyncio.create_task(view.seed_and_follow(dataset_products(dataset.items), settings.catalog_poll_s))
    retention = [
        asyncio.create_task(prune_periodically(events, settings.events.retention_days)),
        asyncio.create_task(expire_responses(events, RESPONSE_TTL_S)),
    ]
    channels = [
        open_channel(addrs.retrieval, [_full_name(qpb, "RetrievalService")], sec),
        open_channel(addrs.ranking, [_full_name(rpb, "RankingService")], sec),
        open_channel(addrs.explanation, [_full_name(xpb, "ExplanationService")], sec),
    ]
    core = GatewayCore(
        RetrievalClient(channels[0]),
        RankingClient(channels[1], settings.diversity),
        ExplanationClient(channels[2]),
        events,
        Variants.parse(settings.experiment.variants),
        view,
        AttributionTokens(settings.token_key.get_secret_value().encode())
        if settings.token_key
        else AttributionTokens.ephemeral(),
        RESPONSE_TTL_S,
        ExplanationArms.parse(settings.experiment.explanation_arms),
    )
    servicer = GatewayServicer(core, settings.default_deadline_s)
    catalog = CatalogServicer(Catalog(products, view))

    def register(server: object) -> None:
        gpb_grpc.add_GatewayServiceServicer_to_server(servicer, server)
        cpb_grpc.add_CatalogServiceServicer_to_server(catalog, server)

    async def close() -> None:
        for task in (*retention, following):
            task.cancel()
        for ch in channels:
            await ch.close()
        events.close()
        products.close()

    await serve(
        "gateway",
        settings,
        addrs.gateway,
        Registration(
            register, [_full_name(gpb, "GatewayService"), _full_name(cpb, "CatalogService")], privileged=WRITE_METHODS
        ),
        on_stop=close,
        # Retrieval is needed for any answer; ranking and explanation only make it better (degradations).
        # The catalogue must have been read once (no sold-out product served by a fresh replica); a later
        # outage of its database is flagged on the answers instead.
        ready=Dependencies(
            {
                **{name: grpc_health_check(ch) for name, ch in zip(("retrieval", "ranking", "explanation"), channels)},
                "catalogue": view.is_fresh,
            },
            required=["retrieval"],
        ),
    )


if __name__ == "__main__":
    asyncio.run(main())
