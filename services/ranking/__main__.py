"""Run the ranking service: `python -m services.ranking` (SHOP_RANKING_ADDR, default 127.0.0.1:50053).

Products newer than the bundle are scored from their catalogue titles (the store the gateway writes), polled every
SHOP_CATALOG_POLL_S."""

from __future__ import annotations

import asyncio

from shop.ranking.v1 import ranking_service_pb2 as pb
from shop.ranking.v1 import ranking_service_pb2_grpc as pb_grpc

from libs.bundle_switch import BundleSwitch, PinnedTriton
from libs.config import StoreSettings
from libs.grpc_server import Registration, serve
from libs.model_io import TEXT_ENCODER
from libs.events import open_event_store
from libs.fresh_signals import NewProductSignals
from libs.products.store import open_catalog_store
from libs.products.view import CatalogView
from libs.rankers import names as ranker_names
from libs.ranking import RankingCore
from libs.serving_state import ServingState
from libs.triton.client import TritonClient
from libs.triton.text import encoder
from services.ranking.servicer import RankingServicer


async def main() -> None:
    settings = StoreSettings()
    triton = TritonClient(settings.triton.url, settings.triton.timeout_s)
    products = open_catalog_store(settings)
    view = CatalogView(products)
    events = open_event_store(settings.events, settings.artifacts_dir)
    signals = NewProductSignals(events, view)

    def build(state: ServingState, pinned: PinnedTriton) -> RankingCore:
        signals.bundle_items = state.store.item_index
        return RankingCore(
            state.store,
            state.dataset.items["title"],
            state.fusion,
            pinned.infer,
            encoder(pinned),
            pinned.version,
            bundle_id=state.bundle.id,
            new_titles=view.titles,
            new_signals=signals.rows,
        )

    switch = BundleSwitch(settings.artifacts_dir, triton, (*ranker_names(), TEXT_ENCODER), build)
    servicer = RankingServicer(switch.current, settings.triton.timeout_s)
    following = asyncio.create_task(view.follow(settings.catalog_poll_s))
    counting = asyncio.create_task(signals.follow(settings.catalog_poll_s))

    async def close() -> None:
        following.cancel()
        counting.cancel()
        events.close()
        await triton.close()
        products.close()

    await serve(
        "ranking",
        settings,
        settings.addresses.ranking,
        Registration(
            lambda s: pb_grpc.add_RankingServiceServicer_to_server(servicer, s),
            [pb.DESCRIPTOR.services_by_name["RankingService"].full_name],
        ),
        on_stop=close,
        ready=switch.ready,
        background=switch.run,
    )


if __name__ == "__main__":
    asyncio.run(main())
