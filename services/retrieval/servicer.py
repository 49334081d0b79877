"""RetrievalService servicer: proto -> validated values -> core -> proto."""
from __future__ import annotations

import grpc
from shop.retrieval.v1 import retrieval_service_pb2 as pb
from shop.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from libs import convert, validation
from services.retrieval.core import RetrievalCore

DEFAULT_LIMIT = 200
MAX_LIMIT = 1000


class RetrievalServicer(pb_grpc.RetrievalServiceServicer):
    def __init__(self, core: RetrievalCore) -> None:
        self.core = core

    async def RetrieveQueryCandidates(self, request: pb.RetrieveQueryCandidatesRequest,
                                      context: grpc.aio.ServicerContext) -> pb.RetrieveQueryCandidatesResponse:
        query = validation.query(request.query)
        user_id = validation.user_id(request.user_id)
        limit = validation.page_size(request.limit, DEFAULT_LIMIT, MAX_LIMIT, field="limit")
        items, degradations = await self.core.query_candidates(query, user_id, limit)
        return pb.RetrieveQueryCandidatesResponse(candidates=[convert.candidate_to_pb(c) for c in items],
                                                  degradations=[convert.degradation_to_pb(x) for x in degradations])

    async def RetrieveUserCandidates(self, request: pb.RetrieveUserCandidatesRequest,
                                     context: grpc.aio.ServicerContext) -> pb.RetrieveUserCandidatesResponse:
        user_id = validation.user_id(request.user_id, required=True)
        limit = validation.page_size(request.limit, DEFAULT_LIMIT, MAX_LIMIT, field="limit")
        items, degradations = await self.core.user_candidates(user_id, convert.user_events_from_pb(request.recent_events), limit)
        return pb.RetrieveUserCandidatesResponse(candidates=[convert.candidate_to_pb(c) for c in items],
                                                 degradations=[convert.degradation_to_pb(x) for x in degradations])
