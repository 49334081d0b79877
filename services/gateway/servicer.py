"""GatewayService servicer: proto -> validated domain values -> core -> proto."""

from __future__ import annotations

import time

import grpc
from shop.gateway.v1 import gateway_service_pb2 as pb
from shop.gateway.v1 import gateway_service_pb2_grpc as pb_grpc

from libs import convert, shelves, validation
from libs.gateway import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Budget, GatewayCore, Page
from libs.storefront import Browse


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
        "next_page_token": page.next_page_token,
    }


def _browse(request: pb.SearchRequest | pb.RecommendRequest) -> Browse:
    order_by = convert.order_by_from_pb(request.order_by)
    return Browse(convert.filter_from_pb(request.filter), order_by, request.page_token)


class GatewayServicer(pb_grpc.GatewayServiceServicer):
    def __init__(self, core: GatewayCore, default_deadline_s: float) -> None:
        self.core = core
        self.default_deadline_s = default_deadline_s

    async def Search(self, request: pb.SearchRequest, context: grpc.aio.ServicerContext) -> pb.SearchResponse:
        query = validation.query(request.query)
        user_id = validation.user_id(request.user_id)
        size = validation.page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        browse = _browse(request)
        page = await self.core.search(
            query, user_id, size, request.explain, _budget(context, self.default_deadline_s), browse
        )
        return pb.SearchResponse(**_page_fields(page), corrected_query=page.corrected_query)

    async def Recommend(self, request: pb.RecommendRequest, context: grpc.aio.ServicerContext) -> pb.RecommendResponse:
        shelf = convert.shelf_from_pb(request.shelf)
        user_id = validation.user_id(request.user_id)
        products = shelves.check_request(shelf, user_id, request.context_product_ids)
        size = validation.page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        browse = _browse(request)
        page = await self.core.recommend(
            user_id, size, request.explain, _budget(context, self.default_deadline_s), shelf, products, browse
        )
        return pb.RecommendResponse(**_page_fields(page))

    async def ExplainResult(
        self, request: pb.ExplainResultRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExplainResultResponse:
        out = await self.core.explain_result(
            request.attribution_token, list(request.product_ids), _budget(context, self.default_deadline_s)
        )
        return pb.ExplainResultResponse(
            results=[convert.scored_to_pb(x) for x in out.items],
            model_versions=[convert.version_to_pb(v) for v in out.versions],
            variant=out.variant,
        )

    async def RecordEvents(
        self, request: pb.RecordEventsRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordEventsResponse:
        recorded = await self.core.record_events(convert.events_from_pb(request.events, time.time()))
        return pb.RecordEventsResponse(
            accepted_count=recorded.accepted,
            duplicate_count=recorded.duplicates,
            unjoined_count=recorded.unjoined_count,
            unjoined_product_ids=recorded.unjoined_product_ids,
        )
