"""Run the explanation service: `python -m services.explanation` (SHOP_EXPLANATION_ADDR, default 127.0.0.1:50054)."""

from __future__ import annotations

import asyncio

from shop.explanation.v1 import explanation_service_pb2 as pb
from shop.explanation.v1 import explanation_service_pb2_grpc as pb_grpc

from libs.bundle_switch import BundleSwitch, PinnedTriton
from libs.config import ServiceSettings
from libs.model_io import TEXT_ENCODER
from libs.rankers import names as ranker_names
from libs.grpc_server import Registration, serve
from libs.serving_state import ServingState
from libs.triton.client import TritonClient
from libs.triton.text import encoder
from libs.explain.core import ExplanationCore
from services.explanation.servicer import ExplanationServicer


async def main() -> None:
    settings = ServiceSettings()
    triton = TritonClient(settings.triton.url, settings.triton.timeout_s)

    def build(state: ServingState, pinned: PinnedTriton) -> ExplanationCore:
        return ExplanationCore(
            state.store,
            state.dataset.items["title"],
            state.fusion,
            pinned.infer,
            encoder(pinned),
            pinned.version,
            state.bundle.id,
        )

    switch = BundleSwitch(settings.artifacts_dir, triton, (*ranker_names(), TEXT_ENCODER), build)
    servicer = ExplanationServicer(switch.current, settings.triton.timeout_s)
    await serve(
        "explanation",
        settings,
        settings.addresses.explanation,
        Registration(
            lambda s: pb_grpc.add_ExplanationServiceServicer_to_server(servicer, s),
            [pb.DESCRIPTOR.services_by_name["ExplanationService"].full_name],
        ),
        on_stop=triton.close,
        ready=switch.ready,
        background=switch.run,
    )


if __name__ == "__main__":
    asyncio.run(main())
