"""Freshness on every replica: two full replicas (gateway, retrieval, ranking, explanation each) sharing one real
PostgreSQL catalogue (a fresh database) and one real Triton, over loopback gRPC. A product acknowledged by one
replica's UpsertProducts is found by the other replica's Search, by its title words, within 2 s."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.type import money_pb2
from shop.catalog.v1 import catalog_service_pb2 as pb
from shop.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from shop.common.v1 import common_pb2 as cpb
from shop.gateway.v1 import gateway_service_pb2 as gpb
from shop.gateway.v1 import gateway_service_pb2_grpc as gpb_grpc

from libs.stack import Stack

FRESHNESS_S = 2.0
PRODUCTS = 5  # per direction


@pytest.fixture
def replicas(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Stack]]:
    env = {"SHOP_EVENTS_DSN": pg_dsn}
    first = Stack(env=dict(env), log_dir=tmp_path_factory.mktemp("replica1"))
    second = None
    try:
        first.start()
        second = Stack(
            env={**env, "SHOP_TRITON_URL": first.triton.grpc_url}, log_dir=tmp_path_factory.mktemp("replica2")
        ).start(with_triton=False)
        yield first, second
    finally:
        if second is not None:
            second.stop()
        first.stop()


def _found_within(writer: Stack, reader: Stack) -> list[float]:
    """Seconds from each acknowledged upsert on `writer` until `reader`'s Search returns the product."""
    with (
        grpc.insecure_channel(writer.addresses["gateway"]) as w,
        grpc.insecure_channel(reader.addresses["gateway"]) as r,
    ):
        catalog, gateway = pb_grpc.CatalogServiceStub(w), gpb_grpc.GatewayServiceStub(r)
        delays = []
        for _ in range(PRODUCTS):
            word = "zq" + uuid.uuid4().hex[:6]
            pid = f"N-{uuid.uuid4().hex[:8]}"
            catalog.UpsertProducts(
                pb.UpsertProductsRequest(
                    products=[
                        pb.Product(
                            product_id=pid,
                            title=f"{word.upper()} ENAMEL MUG",
                            availability=cpb.AVAILABILITY_IN_STOCK,
                            price=money_pb2.Money(currency_code="GBP", units=2),
                        )
                    ]
                ),
                timeout=10,
            )
            acked = time.monotonic()
            while pid not in [
                x.product.product_id
                for x in gateway.Search(gpb.SearchRequest(query=f"{word} mug", page_size=5), timeout=10).results
            ]:
                assert time.monotonic() - acked < FRESHNESS_S, f"{pid} not on the other replica in {FRESHNESS_S} s"
                time.sleep(0.02)
            delays.append(time.monotonic() - acked)
    return delays


def test_a_product_upserted_on_one_replica_is_searchable_on_the_other_within_two_seconds(replicas):
    first, second = replicas
    delays = _found_within(first, second) + _found_within(second, first)
    assert len(delays) == 2 * PRODUCTS and max(delays) < FRESHNESS_S
