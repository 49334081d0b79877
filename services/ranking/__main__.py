"""Run the ranking service: `python -m services.ranking` (SHOP_RANKING_ADDR, default 127.0.0.1:50053)."""
from __future__ import annotations

import asyncio

from shop.ranking.v1 import ranking_service_pb2 as pb
from shop.ranking.v1 import ranking_service_pb2_grpc as pb_grpc

from libs.config import ServiceSettings
from libs.rankers import names as ranker_names
from libs.readiness import models_ready
from libs.server import Registration, serve
from libs.serving import load_serving_state
from libs.triton.client import TritonClient
from libs.triton.text import encoder
from libs.triton.versions import VersionCache
from services.ranking.core import RankingCore
from services.ranking.servicer import RankingServicer


async def main() -> None:
    settings = ServiceSettings()
    state = load_serving_state(settings.artifacts_dir)
    triton = TritonClient(settings.triton_url, settings.triton_timeout_s)

    core = RankingCore(state.store, state.dataset.items["title"], state.fusion, triton.infer, encoder(triton),
                       VersionCache(triton))
    servicer = RankingServicer(core, settings.triton_timeout_s)
    await serve("ranking", settings, settings.addresses.ranking,
                Registration(lambda s: pb_grpc.add_RankingServiceServicer_to_server(servicer, s),
                             [pb.DESCRIPTOR.services_by_name["RankingService"].full_name]),
                on_stop=triton.close, ready=models_ready(triton.is_model_ready, ranker_names()))


if __name__ == "__main__":
    asyncio.run(main())
