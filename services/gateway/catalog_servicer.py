"""CatalogService servicer: proto -> domain values -> libs.products.catalog -> proto."""

from __future__ import annotations

import grpc
from shop.catalog.v1 import catalog_service_pb2 as pb
from shop.catalog.v1 import catalog_service_pb2_grpc as pb_grpc

from libs import convert
from libs import domain as d
from libs.products.catalog import Catalog
from libs.products.model import MAX_PER_CALL
from libs.validation import at_most

# Reads served from the replica's copy while the catalogue's database is down say so.
STALE = d.Degradation(d.Stage.CATALOG, "catalogue database unavailable: this replica's last read copy")


def _flags(stale: bool) -> list:
    return [convert.degradation_to_pb(STALE)] if stale else []


# What needs the catalogue write token (SHOP_CATALOG_WRITE_TOKEN; libs.grpc_server.Registration.privileged).
WRITE_METHODS = frozenset(
    f"/{pb.DESCRIPTOR.services_by_name['CatalogService'].full_name}/{m}" for m in ("UpsertProducts", "DeleteProducts")
)


class CatalogServicer(pb_grpc.CatalogServiceServicer):
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    async def UpsertProducts(
        self, request: pb.UpsertProductsRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpsertProductsResponse:
        at_most(request.products, MAX_PER_CALL, "products")  # before converting thousands of them
        result = await self.catalog.upsert([convert.product_from_pb(p) for p in request.products])
        return pb.UpsertProductsResponse(
            products=[convert.product_to_pb(p) for p in result.products],
            created_count=result.created,
            updated_count=result.updated,
            unchanged_count=result.unchanged,
        )

    async def GetProduct(
        self, request: pb.GetProductRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetProductResponse:
        product, stale = await self.catalog.get(request.product_id)
        return pb.GetProductResponse(product=convert.product_to_pb(product), degradations=_flags(stale))

    async def ListProducts(
        self, request: pb.ListProductsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListProductsResponse:
        products, token, stale = await self.catalog.list(request.page_size, request.page_token)
        return pb.ListProductsResponse(
            products=[convert.product_to_pb(p) for p in products], next_page_token=token, degradations=_flags(stale)
        )

    async def DeleteProducts(
        self, request: pb.DeleteProductsRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteProductsResponse:
        result = await self.catalog.delete(list(request.product_ids))
        return pb.DeleteProductsResponse(deleted_count=result.deleted, unchanged_count=result.unchanged)
