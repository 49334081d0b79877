"""The process the two model services (ranking, explanation) run: a BundleSwitch over Triton's rankers and text
encoder, the catalogue followed for products newer than the bundle (their titles, and their fresh popularity and
co-purchase signals from the event store), and the gRPC server. Each service names only its core and servicer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from libs.bundle_switch import BundleSwitch, PinnedTriton
from libs.config import StoreSettings
from libs.events import open_event_store
from libs.fresh_signals import NewProductSignals
from libs.grpc_server import Registration, serve
from libs.model_io import TEXT_ENCODER
from libs.products.store import open_catalog_store
from libs.products.view import CatalogView
from libs.rankers import names as ranker_names
from libs.serving_state import ServingState
from libs.triton.client import TritonClient

Core = TypeVar("Core")


async def serve_model_service(
    name: str,
    build_core: Callable[[ServingState, PinnedTriton, CatalogView, NewProductSignals], Core],
    registration: Callable[[Callable[[], Core], float], Registration],
) -> None:
    """`name`: "ranking" or "explanation" (its address setting too); `build_core(state, pinned, view, signals)`: the
    core for a bundle; `registration(current core, Triton timeout)`: the servicer to serve."""
    settings = StoreSettings()
    triton = TritonClient(settings.triton.url, settings.triton.timeout_s)
    products = open_catalog_store(settings)
    view = CatalogView(products)
    events = open_event_store(settings.events, settings.artifacts_dir)
    signals = NewProductSignals(events, view)

    def build(state: ServingState, pinned: PinnedTriton) -> Core:
        signals.bundle_items = state.store.item_index
        return build_core(state, pinned, view, signals)

    switch = BundleSwitch(settings.artifacts_dir, triton, (*ranker_names(), TEXT_ENCODER), build)
    following = asyncio.create_task(view.follow(settings.catalog_poll_s))
    counting = asyncio.create_task(signals.follow(settings.catalog_poll_s))

    async def close() -> None:
        following.cancel()
        counting.cancel()
        events.close()
        await triton.close()
        products.close()

    await serve(
        name,
        settings,
        getattr(settings.addresses, name),
        registration(switch.current, settings.triton.timeout_s),
        on_stop=close,
        ready=switch.ready,
        background=switch.run,
    )
