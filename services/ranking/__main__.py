"""Run the ranking service: `python -m services.ranking` (SHOP_RANKING_ADDR, default 127.0.0.1:50053)."""

from __future__ import annotations

import asyncio

from shop.ranking.v1 import ranking_service_pb2 as pb
from shop.ranking.v1 import ranking_service_pb2_grpc as pb_grpc

from libs.bundle_switch import BundleSwitch, PinnedTriton
from libs.config import ServiceSettings
from libs.model_io import TEXT_ENCODER
from libs.rankers import names as ranker_names
from libs.grpc_server import Registration, serve
from libs.serving_state import ServingState
from libs.triton.client import TritonClient
from libs.triton.text import encoder
from libs.ranking import RankingCore
from services.ranking.servicer import RankingServicer


async def main() -> None:
    settings = ServiceSettings()
    triton = TritonClient(settings.triton.url, settings.triton.timeout_s)

    def build(state: ServingState, pinned: PinnedTriton) -> RankingCore:
        return RankingCore(
            state.store,
            state.dataset.items["title"],
            state.fusion,
            pinned.infer,
            encoder(pinned),
            pinned.version,
            bundle_id=state.bundle.id,
        )

    switch = BundleSwitch(settings.artifacts_dir, triton, (*ranker_names(), TEXT_ENCODER), build)
    servicer = RankingServicer(switch.current, settings.triton.timeout_s)
    await serve(
        "ranking",
        settings,
        settings.addresses.ranking,
        Registration(
            lambda s: pb_grpc.add_RankingServiceServicer_to_server(servicer, s),
            [pb.DESCRIPTOR.services_by_name["RankingService"].full_name],
        ),
        on_stop=triton.close,
        ready=switch.ready,
        background=switch.run,
    )


if __name__ == "__main__":
    asyncio.run(main())
