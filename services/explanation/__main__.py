"""Run the explanation service: `python -m services.explanation` (SHOP_EXPLANATION_ADDR, default 127.0.0.1:50054)."""
from __future__ import annotations

import asyncio

from shop.explanation.v1 import explanation_service_pb2 as pb
from shop.explanation.v1 import explanation_service_pb2_grpc as pb_grpc

from libs.config import ServiceSettings
from libs.rankers import names as ranker_names
from libs.readiness import models_ready
from libs.server import Registration, serve
from libs.serving import load_serving_state
from libs.triton.client import TritonClient
from libs.triton.text import encoder
from services.explanation.core import ExplanationCore
from services.explanation.servicer import ExplanationServicer


async def main() -> None:
    settings = ServiceSettings()
    state = load_serving_state(settings.artifacts_dir)
    triton = TritonClient(settings.triton_url, settings.triton_timeout_s)

    core = ExplanationCore(state.store, state.dataset.items["title"], state.fusion, triton.infer, encoder(triton))
    servicer = ExplanationServicer(core, settings.triton_timeout_s)
    await serve("explanation", settings, settings.addresses.explanation,
                Registration(lambda s: pb_grpc.add_ExplanationServiceServicer_to_server(servicer, s),
                             [pb.DESCRIPTOR.services_by_name["ExplanationService"].full_name]),
                on_stop=triton.close, ready=models_ready(triton.is_model_ready, ranker_names()))


if __name__ == "__main__":
    asyncio.run(main())
