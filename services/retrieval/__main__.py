"""Run the retrieval service: `python -m services.retrieval` (SHOP_RETRIEVAL_ADDR, default 127.0.0.1:50052).

Its indexes follow the catalogue (the store the gateway writes: SHOP_CATALOG_DSN, else SHOP_EVENTS_DSN, else the
SQLite events file), polled every SHOP_CATALOG_POLL_S; the gateway seeds it."""

from __future__ import annotations

import asyncio

from shop.retrieval.v1 import retrieval_service_pb2 as pb
from shop.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from libs.bundle_switch import BundleSwitch, PinnedTriton
from libs.config import StoreSettings
from libs.grpc_server import Registration, serve
from libs.index.products import IndexFollower
from libs.model_io import TEXT_ENCODER
from libs.products.store import open_catalog_store
from libs.products.view import CatalogView
from libs.retrieval import RetrievalCore
from libs.serving_state import ServingState
from libs.triton.client import TritonClient
from libs.triton.text import encoder
from services.retrieval.servicer import RetrievalServicer


async def main() -> None:
    settings = StoreSettings()
    triton = TritonClient(settings.triton.url, settings.triton.timeout_s)
    products = open_catalog_store(settings)
    view = CatalogView(products)
    follower = IndexFollower(view, settings.triton.timeout_s)

    def catalogued(product_id: str):
        """What a filter judges (libs.storefront): the catalogue's content of the product, None without a row."""
        product = view.get(product_id)
        return None if product is None else product.content

    def build(state: ServingState, pinned: PinnedTriton) -> RetrievalCore:
        items = state.dataset.items
        core = RetrievalCore.over_store(
            state.store, items["product_id"], items["title"], encoder(pinned), product=catalogued
        )
        follower.attach(core.indexes, core.encode)  # every core the switch builds follows the catalogue
        return core

    switch = BundleSwitch(settings.artifacts_dir, triton, (TEXT_ENCODER,), build)
    servicer = RetrievalServicer(switch.current, settings.triton.timeout_s)
    following = [asyncio.create_task(view.follow(settings.catalog_poll_s)), asyncio.create_task(follower.run())]

    async def close() -> None:
        for task in following:
            task.cancel()
        await triton.close()
        products.close()

    await serve(
        "retrieval",
        settings,
        settings.addresses.retrieval,
        Registration(
            lambda s: pb_grpc.add_RetrievalServiceServicer_to_server(servicer, s),
            [pb.DESCRIPTOR.services_by_name["RetrievalService"].full_name],
        ),
        on_stop=close,
        ready=switch.ready_unless_triton_down,
        background=switch.run,
    )


if __name__ == "__main__":
    asyncio.run(main())
