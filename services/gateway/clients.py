"""Adapters from the gateway's ports to the inner services' gRPC stubs."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.rpc import error_details_pb2, status_pb2
from shop.explanation.v1 import explanation_service_pb2 as xpb
from shop.explanation.v1 import explanation_service_pb2_grpc as xgrpc
from shop.ranking.v1 import ranking_service_pb2 as rpb
from shop.ranking.v1 import ranking_service_pb2_grpc as rgrpc
from shop.retrieval.v1 import retrieval_service_pb2 as qpb
from shop.retrieval.v1 import retrieval_service_pb2_grpc as qgrpc

from libs import convert
from libs import domain as d
from libs.errors import DeadlineError, FailedPreconditionError, UnavailableError
from libs.stages import StageResult
from libs.storefront import DEFAULT_FILTER, ProductFilter


def _domain_error(exc: grpc.aio.AioRpcError, stage: str) -> Exception:
    code = exc.code()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineError(f"{stage}: deadline exceeded")
    if code == grpc.StatusCode.FAILED_PRECONDITION:  # e.g. asked for a bundle it no longer holds: the caller's to know
        info = _error_info(exc)
        return FailedPreconditionError(
            f"{stage}: {exc.details()}",
            info.reason if info else "FAILED_PRECONDITION",
            dict(info.metadata) if info else {},
        )
    # Anything else from a dependency is an outage for our caller, never INTERNAL. That includes INVALID_ARGUMENT:
    # the gateway validated the caller's request, so an inner rejection is a version skew the caller cannot fix
    # (ranking and explanation degrade; retrieval is UNAVAILABLE).
    return UnavailableError(f"{stage}: {code.name}: {exc.details()}")


def _error_info(exc: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    raw = dict(exc.trailing_metadata() or ()).get("grpc-status-details-bin")
    if not raw:
        return None
    for detail in status_pb2.Status.FromString(raw).details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    return None


class RetrievalClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = qgrpc.RetrievalServiceStub(channel)

    async def query_candidates(
        self, query: str, user_id: str, limit: int, timeout: float, product_filter: ProductFilter = DEFAULT_FILTER
    ) -> StageResult:
        try:
            resp = await self.stub.RetrieveQueryCandidates(
                qpb.RetrieveQueryCandidatesRequest(
                    query=query, user_id=user_id, page_size=limit, filter=convert.filter_to_pb(product_filter)
                ),
                timeout=timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise _domain_error(exc, "retrieval") from exc
        return StageResult(
            [convert.candidate_from_pb(c) for c in resp.candidates],
            [convert.degradation_from_pb(x) for x in resp.degradations],
            corrected_query=resp.corrected_query,
        )

    async def user_candidates(
        self,
        user_id: str,
        recent: Sequence[d.UserEvent],
        limit: int,
        timeout: float,
        shelf: d.Shelf = d.Shelf.FOR_YOU,
        context: Sequence[str] = (),
        product_filter: ProductFilter = DEFAULT_FILTER,
    ) -> StageResult:
        try:
            resp = await self.stub.RetrieveUserCandidates(
                qpb.RetrieveUserCandidatesRequest(
                    user_id=user_id,
                    page_size=limit,
                    recent_events=[convert.user_event_to_pb(e) for e in recent],
                    shelf=convert.shelf_to_pb(shelf),
                    context_product_ids=list(context),
                    filter=convert.filter_to_pb(product_filter),
                ),
                timeout=timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise _domain_error(exc, "retrieval") from exc
        return StageResult(
            [convert.candidate_from_pb(c) for c in resp.candidates],
            [convert.degradation_from_pb(x) for x in resp.degradations],
        )


class RankingClient:
    def __init__(self, channel: grpc.aio.Channel, diversity: float = 0.0) -> None:
        self.stub = rgrpc.RankingServiceStub(channel)
        self.diversity = diversity

    async def rank(
        self,
        user_id: str,
        query: str,
        candidates: Sequence[d.Candidate],
        page_size: int,
        variant: str,
        recent: Sequence[d.UserEvent],
        timeout: float,
    ) -> StageResult:
        request = rpb.RankCandidatesRequest(
            user_id=user_id,
            query=query,
            product_ids=[c.product_id for c in candidates],
            page_size=page_size,
            variant=variant,
            diversity=self.diversity,
            recent_events=[convert.user_event_to_pb(e) for e in recent],
        )
        try:
            resp = await self.stub.RankCandidates(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise _domain_error(exc, "ranking") from exc
        sources = {c.product_id: sorted({s.source for s in c.source_ranks}, key=lambda s: s.value) for c in candidates}
        items = [convert.scored_from_pb(x) for x in resp.results]
        for item in items:
            item.sources = item.sources or sources.get(item.product_id, [])
        return StageResult(
            items,
            [convert.degradation_from_pb(x) for x in resp.degradations],
            [convert.version_from_pb(v) for v in resp.model_versions],
        )


class ExplanationClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = xgrpc.ExplanationServiceStub(channel)

    async def explain(
        self,
        user_id: str,
        query: str,
        product_ids: Sequence[str],
        variant: str,
        recent: Sequence[d.UserEvent],
        timeout: float,
        bundle_id: str = "",
        all_evidence: bool = False,
        shelf: d.Shelf | None = None,
        context: Sequence[str] = (),
    ) -> StageResult:
        try:
            resp = await self.stub.ExplainResults(
                xpb.ExplainResultsRequest(
                    user_id=user_id,
                    query=query,
                    product_ids=list(product_ids),
                    variant=variant,
                    recent_events=[convert.user_event_to_pb(e) for e in recent],
                    bundle_id=bundle_id,
                    all_evidence=all_evidence,
                    shelf=convert.shelf_to_pb(shelf) if shelf is not None else 0,
                    context_product_ids=list(context),
                ),
                timeout=timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise _domain_error(exc, "explanation") from exc
        return StageResult(
            [convert.explanation_from_pb(e) for e in resp.explanations],
            [convert.degradation_from_pb(x) for x in resp.degradations],
            [convert.version_from_pb(v) for v in resp.model_versions],
        )
