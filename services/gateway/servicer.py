"""GatewayService servicer: proto -> validated domain values -> core -> proto."""
from __future__ import annotations

import time

import grpc
from shop.gateway.v1 import gateway_service_pb2 as pb
from shop.gateway.v1 import gateway_service_pb2_grpc as pb_grpc

from libs import convert, validation
from libs import domain as d
from libs.gateway import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Budget, GatewayCore, Page


def _budget(context: grpc.aio.ServicerContext, default_s: float) -> Budget:
    remaining = context.time_remaining()
    # Keep a little back for serialising the answer.
    seconds = default_s if remaining is None else max(0.0, remaining - 0.01)
    return Budget(time.monotonic() + seconds)


def _page_fields(page: Page) -> dict:
    return {
        "results": [convert.scored_to_pb(x) for x in page.items],
        "attribution_token": page.attribution_token,
        "degradations": [convert.degradation_to_pb(x) for x in page.degradations],
        "model_versions": [convert.version_to_pb(v) for v in page.versions],
        "variant": page.variant,
    }


class GatewayServicer(pb_grpc.GatewayServiceServicer):
    def __init__(self, core: GatewayCore, default_deadline_s: float) -> None:
        self.core = core
        self.default_deadline_s = default_deadline_s

    async def Search(self, request: pb.SearchRequest, context: grpc.aio.ServicerContext) -> pb.SearchResponse:
        query = validation.query(request.query)
        user_id = validation.user_id(request.user_id)
        size = validation.page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        page = await self.core.search(query, user_id, size, request.explain, _budget(context, self.default_deadline_s))
        return pb.SearchResponse(**_page_fields(page))

    async def Recommend(self, request: pb.RecommendRequest, context: grpc.aio.ServicerContext
                        ) -> pb.RecommendResponse:
        user_id = validation.user_id(request.user_id, required=True)
        size = validation.page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        page = await self.core.recommend(user_id, size, request.explain, _budget(context, self.default_deadline_s))
        return pb.RecommendResponse(**_page_fields(page))

    async def RecordEvents(self, request: pb.RecordEventsRequest, context: grpc.aio.ServicerContext
                           ) -> pb.RecordEventsResponse:
        now = time.time()
        events = []
        for e in request.events:
            kind = convert.enum_from_pb(d.EventKind, e.type)
            ts = e.event_time.ToNanoseconds() / 1e9 if e.HasField("event_time") else now
            quantity = e.quantity if e.quantity != 0 else 1
            event = d.UserEvent(e.product_id, kind, ts, quantity) if kind else None
            events.append((e.event_id, e.user_id, e.attribution_token, event))
        accepted, duplicates = await self.core.record_events(events)
        return pb.RecordEventsResponse(accepted_count=accepted, duplicate_count=duplicates)
