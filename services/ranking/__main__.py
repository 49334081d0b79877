"""Run the ranking service: `python -m services.ranking` (SHOP_RANKING_ADDR, default 127.0.0.1:50053).

Products newer than the bundle are scored from their catalogue titles (the store the gateway writes), polled every
SHOP_CATALOG_POLL_S (libs.model_service)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from shop.ranking.v1 import ranking_service_pb2 as pb
from shop.ranking.v1 import ranking_service_pb2_grpc as pb_grpc

from libs.bundle_switch import PinnedTriton
from libs.fresh_signals import NewProductSignals
from libs.grpc_server import Registration
from libs.model_service import serve_model_service
from libs.products.view import CatalogView
from libs.ranking import RankingCore
from libs.serving_state import ServingState
from libs.triton.text import encoder
from services.ranking.servicer import RankingServicer


def _core(state: ServingState, pinned: PinnedTriton, view: CatalogView, signals: NewProductSignals) -> RankingCore:
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


def _registration(current: Callable[[], RankingCore], timeout_s: float) -> Registration:
    servicer = RankingServicer(current, timeout_s)
    return Registration(
        lambda s: pb_grpc.add_RankingServiceServicer_to_server(servicer, s),
        [pb.DESCRIPTOR.services_by_name["RankingService"].full_name],
    )


async def main() -> None:
    await serve_model_service("ranking", _core, _registration)


if __name__ == "__main__":
    asyncio.run(main())
