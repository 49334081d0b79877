"""Run the retrieval service: `python -m services.retrieval` (SHOP_RETRIEVAL_ADDR, default 127.0.0.1:50052)."""
from __future__ import annotations

import asyncio
from collections.abc import Sequence

from shop.retrieval.v1 import retrieval_service_pb2 as pb
from shop.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from libs.config import ServiceSettings
from libs.domain import UserEvent
from libs.history import user_context
from libs.server import Registration, serve
from libs.serving import load_serving_state
from libs.triton.client import TritonClient
from libs.triton.text import encoder
from services.retrieval.core import RetrievalCore
from services.retrieval.servicer import RetrievalServicer


async def main() -> None:
    settings = ServiceSettings()
    state = load_serving_state(settings.artifacts_dir)
    dataset, store = state.dataset, state.store
    triton = TritonClient(settings.triton_url, settings.triton_timeout_s)

    def history(user_id: str, recent: Sequence[UserEvent]):  # noqa: ANN202
        return user_context(store, user_id, recent)

    core = RetrievalCore(dataset.items["product_id"], dataset.items["title"], state.item_emb, store.pop[:, 1],
                         dataset.copurchase, history, encoder(triton))
    servicer = RetrievalServicer(core, settings.triton_timeout_s)
    await serve("retrieval", settings, settings.addresses.retrieval,
                Registration(lambda s: pb_grpc.add_RetrievalServiceServicer_to_server(servicer, s),
                             [pb.DESCRIPTOR.services_by_name["RetrievalService"].full_name]),
                on_stop=triton.close)


if __name__ == "__main__":
    asyncio.run(main())
