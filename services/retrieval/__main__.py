"""Run the retrieval service: `python -m services.retrieval` (SHOP_RETRIEVAL_ADDR, default 127.0.0.1:50052)."""

from __future__ import annotations

import asyncio
from shop.retrieval.v1 import retrieval_service_pb2 as pb
from shop.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from libs.bundle_switch import BundleSwitch, PinnedTriton
from libs.config import ServiceSettings
from libs.model_io import TEXT_ENCODER
from libs.grpc_server import Registration, serve
from libs.serving_state import ServingState
from libs.triton.client import TritonClient
from libs.triton.text import encoder
from libs.retrieval import RetrievalCore
from services.retrieval.servicer import RetrievalServicer


async def main() -> None:
    settings = ServiceSettings()
    triton = TritonClient(settings.triton.url, settings.triton.timeout_s)

    def build(state: ServingState, pinned: PinnedTriton) -> RetrievalCore:
        items = state.dataset.items
        return RetrievalCore.over_store(state.store, items["product_id"], items["title"], encoder(pinned))

    switch = BundleSwitch(settings.artifacts_dir, triton, (TEXT_ENCODER,), build)
    servicer = RetrievalServicer(switch.current, settings.triton.timeout_s)
    await serve(
        "retrieval",
        settings,
        settings.addresses.retrieval,
        Registration(
            lambda s: pb_grpc.add_RetrievalServiceServicer_to_server(servicer, s),
            [pb.DESCRIPTOR.services_by_name["RetrievalService"].full_name],
        ),
        on_stop=triton.close,
        ready=switch.ready_unless_triton_down,
        background=switch.run,
    )


if __name__ == "__main__":
    asyncio.run(main())
