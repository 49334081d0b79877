"""Run the explanation service: `python -m services.explanation` (SHOP_EXPLANATION_ADDR, default 127.0.0.1:50054).

Products newer than the bundle are explained from their titles, read from the catalogue (the store the gateway
writes: SHOP_CATALOG_DSN, else SHOP_EVENTS_DSN, else the SQLite events file), followed every SHOP_CATALOG_POLL_S
(libs.model_service)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from shop.explanation.v1 import explanation_service_pb2 as pb
from shop.explanation.v1 import explanation_service_pb2_grpc as pb_grpc

from libs.bundle_switch import PinnedTriton
from libs.explain.core import ExplanationCore
from libs.fresh_signals import NewProductSignals
from libs.grpc_server import Registration
from libs.model_service import serve_model_service
from libs.products.view import CatalogView
from libs.serving_state import ServingState
from libs.triton.text import encoder
from services.explanation.servicer import ExplanationServicer


def _core(state: ServingState, pinned: PinnedTriton, view: CatalogView, signals: NewProductSignals) -> ExplanationCore:
    return ExplanationCore(
        state.store,
        state.dataset.items["title"],
        state.fusion,
        pinned.infer,
        encoder(pinned),
        pinned.version,
        state.bundle.id,
        new_titles=view.titles,
        new_signals=signals.rows,
    )


def _registration(current: Callable[[], ExplanationCore], timeout_s: float) -> Registration:
    servicer = ExplanationServicer(current, timeout_s)
    return Registration(
        lambda s: pb_grpc.add_ExplanationServiceServicer_to_server(servicer, s),
        [pb.DESCRIPTOR.services_by_name["ExplanationService"].full_name],
    )


async def main() -> None:
    await serve_model_service("explanation", _core, _registration)


if __name__ == "__main__":
    asyncio.run(main())
