"""RankingService servicer: proto -> validated values -> core -> proto."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from shop.ranking.v1 import ranking_service_pb2 as pb
from shop.ranking.v1 import ranking_service_pb2_grpc as pb_grpc

from libs import convert, validation
from libs.grpc_server import call_timeout
from libs.errors import invalid
from libs.model_io import MAX_CANDIDATES
from libs.ranking import RankingCore


class RankingServicer(pb_grpc.RankingServiceServicer):
    def __init__(self, core: Callable[[], RankingCore], default_timeout_s: float) -> None:
        self.core = core  # the current core (libs.bundle_switch.BundleSwitch.current), read once per call
        self.default_timeout_s = default_timeout_s

    async def RankCandidates(
        self, request: pb.RankCandidatesRequest, context: grpc.aio.ServicerContext
    ) -> pb.RankCandidatesResponse:
        user_id = validation.user_id(request.user_id)
        query = validation.query(request.query, required=False)
        validation.at_most(request.recent_events, validation.MAX_RECENT_EVENTS, "recent_events")
        if len(request.product_ids) > MAX_CANDIDATES:
            raise invalid("product_ids", f"at most {MAX_CANDIDATES} candidates (got {len(request.product_ids)})")
        size = validation.page_size(request.page_size, 0, len(request.product_ids))
        timeout = call_timeout(context, self.default_timeout_s)
        ranked = await self.core().rank(
            user_id,
            query,
            list(request.product_ids),
            size,
            request.variant,
            request.diversity,
            convert.user_events_from_pb(request.recent_events),
            timeout,
        )
        return pb.RankCandidatesResponse(
            results=[convert.scored_to_pb(x) for x in ranked.items],
            degradations=[convert.degradation_to_pb(x) for x in ranked.degradations],
            model_versions=[convert.version_to_pb(v) for v in ranked.versions],
        )
