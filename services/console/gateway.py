"""The console's one dependency: the gateway, over gRPC (the same stubs and channel settings as the services)."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.rpc import error_details_pb2, status_pb2
from shop.gateway.v1 import gateway_service_pb2 as gw
from shop.gateway.v1 import gateway_service_pb2_grpc as gw_grpc

from libs.channels import open_channel
from libs.config import SecuritySettings

TIMEOUT_S = 5.0  # a person waits longer than a storefront; explanations of a full page take ~1-2 s here


class Gateway:
    """A gRPC aio channel belongs to the event loop that made it: it is opened on first use, inside the server's
    loop, and closed by the app's lifespan."""

    def __init__(self, target: str, security: SecuritySettings | None = None) -> None:
        self.target, self.security = target, security
        self.channel: grpc.aio.Channel | None = None
        self._stub: gw_grpc.GatewayServiceStub | None = None

    @property
    def stub(self) -> gw_grpc.GatewayServiceStub:
        if self._stub is None:
            self.channel = open_channel(
                self.target, [gw.DESCRIPTOR.services_by_name["GatewayService"].full_name], self.security
            )
            self._stub = gw_grpc.GatewayServiceStub(self.channel)
        return self._stub

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()
        self.channel, self._stub = None, None

    async def search(self, query: str, user_id: str, page_size: int) -> gw.SearchResponse:
        return await self.stub.Search(
            gw.SearchRequest(query=query, user_id=user_id, page_size=page_size), timeout=TIMEOUT_S
        )

    async def recommend(
        self, user_id: str, page_size: int, shelf: int = 0, context_product_ids: Sequence[str] = ()
    ) -> gw.RecommendResponse:
        request = gw.RecommendRequest(user_id=user_id, page_size=page_size)
        if shelf or context_product_ids:  # fields of the shelves change; absent in older protos
            request.shelf = shelf
            request.context_product_ids.extend(context_product_ids)
        return await self.stub.Recommend(request, timeout=TIMEOUT_S)

    async def explain(self, attribution_token: str, product_ids: Sequence[str]) -> gw.ExplainResultResponse:
        return await self.stub.ExplainResult(
            gw.ExplainResultRequest(attribution_token=attribution_token, product_ids=list(product_ids)),
            timeout=TIMEOUT_S,
        )


def shelves() -> list[tuple[int, str]]:
    """(value, label) of RecommendRequest.shelf's enum, or none when this build's protos have no shelves."""
    field = gw.RecommendRequest.DESCRIPTOR.fields_by_name.get("shelf")
    if field is None:
        return []
    return [
        (v.number, v.name.removeprefix("SHELF_").replace("_", " ").lower())
        for v in field.enum_type.values
        if v.number != 0
    ]


def error_text(exc: grpc.aio.AioRpcError) -> str:
    """The status in words, with the fields a BadRequest names."""
    raw = dict(exc.trailing_metadata() or ()).get("grpc-status-details-bin")
    fields = []
    for detail in status_pb2.Status.FromString(raw).details if raw else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields += [f"{v.field}: {v.description}" for v in bad.field_violations]
    return f"{exc.code().name}: " + ("; ".join(fields) if fields else (exc.details() or ""))
