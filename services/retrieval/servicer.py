"""RetrievalService servicer: proto -> validated values -> core -> proto."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from shop.retrieval.v1 import retrieval_service_pb2 as pb
from shop.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from libs import convert, shelves, validation
from libs.grpc_server import call_timeout
from libs.retrieval import RetrievalCore

DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 1000


def _page_size(request: pb.RetrieveQueryCandidatesRequest | pb.RetrieveUserCandidatesRequest) -> int:
    # `limit` is the deprecated name of page_size; older gateways still send it.
    field = "page_size" if request.page_size or not request.limit else "limit"
    return validation.page_size(getattr(request, field), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, field=field)


class RetrievalServicer(pb_grpc.RetrievalServiceServicer):
    def __init__(self, core: Callable[[], RetrievalCore], default_timeout_s: float) -> None:
        self.core = core  # the current core (libs.bundle_switch.BundleSwitch.current), read once per call
        self.default_timeout_s = default_timeout_s

    async def RetrieveQueryCandidates(
        self, request: pb.RetrieveQueryCandidatesRequest, context: grpc.aio.ServicerContext
    ) -> pb.RetrieveQueryCandidatesResponse:
        query = validation.query(request.query)
        user_id = validation.user_id(request.user_id)
        product_filter = convert.filter_from_pb(request.filter)
        timeout = call_timeout(context, self.default_timeout_s)
        items, degradations, corrected = await self.core().query_candidates(
            query, user_id, _page_size(request), timeout, product_filter=product_filter
        )
        return pb.RetrieveQueryCandidatesResponse(
            candidates=[convert.candidate_to_pb(c) for c in items],
            degradations=[convert.degradation_to_pb(x) for x in degradations],
            corrected_query=corrected,
        )

    async def RetrieveUserCandidates(
        self, request: pb.RetrieveUserCandidatesRequest, context: grpc.aio.ServicerContext
    ) -> pb.RetrieveUserCandidatesResponse:
        shelf = convert.shelf_from_pb(request.shelf)
        user_id = validation.user_id(request.user_id)
        context = shelves.check_request(shelf, user_id, request.context_product_ids)
        validation.at_most(request.recent_events, validation.MAX_RECENT_EVENTS, "recent_events")
        recent = convert.user_events_from_pb(request.recent_events)
        product_filter = convert.filter_from_pb(request.filter)
        items, degradations = await self.core().user_candidates(
            user_id, recent, _page_size(request), shelf, context, product_filter
        )
        return pb.RetrieveUserCandidatesResponse(
            candidates=[convert.candidate_to_pb(c) for c in items],
            degradations=[convert.degradation_to_pb(x) for x in degradations],
        )
