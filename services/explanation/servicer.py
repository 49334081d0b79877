"""ExplanationService servicer: proto -> validated values -> core -> proto."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from shop.explanation.v1 import explanation_service_pb2 as pb
from shop.explanation.v1 import explanation_service_pb2_grpc as pb_grpc

from libs import convert, shelves, validation
from libs.grpc_server import call_timeout
from libs.explain.core import ExplanationCore


class ExplanationServicer(pb_grpc.ExplanationServiceServicer):
    def __init__(self, core: Callable[[], ExplanationCore], default_timeout_s: float) -> None:
        self.core = core  # the current core (libs.bundle_switch.BundleSwitch.current), read once per call
        self.default_timeout_s = default_timeout_s

    async def ExplainResults(
        self, request: pb.ExplainResultsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExplainResultsResponse:
        user_id = validation.user_id(request.user_id)
        query = validation.query(request.query, required=False)
        validation.at_most(request.recent_events, validation.MAX_RECENT_EVENTS, "recent_events")
        validation.at_most(request.context_product_ids, shelves.MAX_CONTEXT_PRODUCTS, "context_product_ids")
        shelf = convert.shelf_from_pb(request.shelf) if request.shelf else None
        timeout = call_timeout(context, self.default_timeout_s)
        out = await self.core().explain(
            user_id,
            query,
            list(request.product_ids),
            request.variant,
            convert.user_events_from_pb(request.recent_events),
            timeout,
            request.bundle_id,
            request.all_evidence,
            shelf,
            list(request.context_product_ids),
        )
        return pb.ExplainResultsResponse(
            explanations=[convert.explanation_to_pb(e) for e in out.explanations],
            degradations=[convert.degradation_to_pb(x) for x in out.degradations],
            model_versions=[convert.version_to_pb(v) for v in out.versions],
        )
