"""RetrievalService servicer: proto -> validated values -> core -> proto."""
from __future__ import annotations

import grpc
from shop.common.v1 import common_pb2 as cpb
from shop.retrieval.v1 import retrieval_service_pb2 as pb
from shop.retrieval.v1 import retrieval_service_pb2_grpc as pb_grpc

from libs import convert, domain, validation
from services.retrieval.core import RetrievalCore

DEFAULT_LIMIT = 200
MAX_LIMIT = 1000


def _candidates(items: list[domain.Candidate]) -> list[pb.Candidate]:
    return [pb.Candidate(product=cpb.ProductRef(product_id=c.product_id, title=c.title),
                         retrieval_score=c.retrieval_score, matched_terms=c.matched_terms,
                         source_ranks=[pb.SourceRank(source=convert.source_to_pb(s.source), rank=s.rank, score=s.score)
                                       for s in c.source_ranks]) for c in items]


class RetrievalServicer(pb_grpc.RetrievalServiceServicer):
    def __init__(self, core: RetrievalCore) -> None:
        self.core = core

    async def RetrieveQueryCandidates(self, request: pb.RetrieveQueryCandidatesRequest,
                                      context: grpc.aio.ServicerContext) -> pb.RetrieveQueryCandidatesResponse:
        query = validation.query(request.query)
        user_id = validation.user_id(request.user_id)
        limit = validation.page_size(request.limit, DEFAULT_LIMIT, MAX_LIMIT, field="limit")
        items, degradations = await self.core.query_candidates(query, user_id, limit)
        return pb.RetrieveQueryCandidatesResponse(candidates=_candidates(items),
                                                  degradations=[convert.degradation_to_pb(x) for x in degradations])

    async def RetrieveUserCandidates(self, request: pb.RetrieveUserCandidatesRequest,
                                     context: grpc.aio.ServicerContext) -> pb.RetrieveUserCandidatesResponse:
        user_id = validation.user_id(request.user_id, required=True)
        limit = validation.page_size(request.limit, DEFAULT_LIMIT, MAX_LIMIT, field="limit")
        items, degradations = await self.core.user_candidates(user_id, convert.user_events_from_pb(request.recent_events), limit)
        return pb.RetrieveUserCandidatesResponse(candidates=_candidates(items),
                                                 degradations=[convert.degradation_to_pb(x) for x in degradations])
