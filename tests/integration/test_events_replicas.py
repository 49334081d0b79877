"""Two real gateway processes sharing one PostgreSQL event store and catalogue (a fresh database of a real server).

No Triton: retrieval is a stand-in gRPC server in this process whose user candidates are the products in the
recent events the gateway sends it (so a recorded purchase shows up in the answer), and ranking is down, so
the gateway answers in retrieval order, flagged. What is tested is the gateways and the shared store.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import psycopg
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from google.type import money_pb2
from shop.catalog.v1 import catalog_service_pb2 as catpb
from shop.catalog.v1 import catalog_service_pb2_grpc as catpb_grpc
from grpc_status import rpc_status
from shop.common.v1 import common_pb2 as cpb
from shop.gateway.v1 import gateway_service_pb2 as gpb
from shop.gateway.v1 import gateway_service_pb2_grpc as gpb_grpc
from shop.retrieval.v1 import retrieval_service_pb2 as qpb
from shop.retrieval.v1 import retrieval_service_pb2_grpc as qpb_grpc

from libs.catalog.prepare import prepare
from libs.config import REPO_ROOT
from libs.triton.launcher import free_port
from tests.unit.catalog.conftest import ROWS, write_csv
from libs.readiness import LIVENESS
from libs.stack import stop_process, wait_healthy

USER = "13047"
BOUGHT = "71053"  # in the tiny catalogue, never bought by USER in the data
OTHER = "22423"


class RecentEventsRetrieval(qpb_grpc.RetrievalServiceServicer):
    """User candidates: the recent events' products (newest first), then OTHER."""

    def RetrieveUserCandidates(self, request, context):
        products = list(dict.fromkeys(e.product_id for e in reversed(request.recent_events)))
        products += [p for p in (OTHER,) if p not in products]
        return qpb.RetrieveUserCandidatesResponse(
            candidates=[
                qpb.Candidate(product=cpb.ProductRef(product_id=p, title=p), retrieval_score=1.0 / (i + 1))
                for i, p in enumerate(products)
            ]
        )


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("replicas")
    write_csv(root / "data" / "online_retail" / "online_retail.csv.gz", ROWS, gz=True)
    prepare(root / "data", root / "artifacts")
    return root / "artifacts"


@pytest.fixture
def retrieval_addr() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    qpb_grpc.add_RetrievalServiceServicer_to_server(RecentEventsRetrieval(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def _start_gateway(artifacts: Path, retrieval_addr: str, dsn: str, log: Path) -> tuple[subprocess.Popen, str]:
    addr = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "SHOP_GATEWAY_ADDR": addr,
        "SHOP_RETRIEVAL_ADDR": retrieval_addr,
        # Nothing listens on these ports: ranking and explanation are down.
        "SHOP_RANKING_ADDR": f"127.0.0.1:{free_port()}",
        "SHOP_EXPLANATION_ADDR": f"127.0.0.1:{free_port()}",
        "SHOP_ARTIFACTS_DIR": str(artifacts),
        "SHOP_EVENTS_DSN": dsn,
        "SHOP_EVENTS_TIMEOUT_S": "0.5",
        "SHOP_METRICS_PORT": "-1",
    }
    env.pop("SHOP_EVENTS_DB", None)
    out = open(log, "ab")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.gateway"],
        cwd=REPO_ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, addr


@pytest.fixture
def replicas(
    artifacts: Path, retrieval_addr: str, pg_dsn: str, tmp_path: Path
) -> Iterator[list[tuple[subprocess.Popen, str]]]:
    """Two gateway processes on the same SHOP_EVENTS_DSN; (process, address) each, stopped by pid."""
    started: list[tuple[subprocess.Popen, str]] = []
    try:
        for n in range(2):
            started.append(_start_gateway(artifacts, retrieval_addr, pg_dsn, tmp_path / f"gateway{n}.log"))
        for proc, addr in started:
            wait_healthy(addr, 60, proc, LIVENESS)  # degraded on purpose: never ready (ranking is down)
        yield started
    finally:
        for proc, _ in started:
            stop_process(proc)


def _event(event_id: str, product: str = BOUGHT) -> gpb.Event:
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    return gpb.Event(
        event_id=event_id, type=cpb.EVENT_TYPE_PURCHASE, user_id=USER, product_id=product, event_time=now, quantity=1
    )


def _stored(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT event_id FROM events ORDER BY event_id")]


def test_event_recorded_through_one_replica_changes_the_others_next_recommend(replicas):
    (_, addr1), (_, addr2) = replicas
    with grpc.insecure_channel(addr1) as ch1, grpc.insecure_channel(addr2) as ch2:
        one, two = gpb_grpc.GatewayServiceStub(ch1), gpb_grpc.GatewayServiceStub(ch2)
        before = two.Recommend(gpb.RecommendRequest(user_id=USER, page_size=5), timeout=10)
        assert [r.product.product_id for r in before.results] == [OTHER]
        assert one.RecordEvents(gpb.RecordEventsRequest(events=[_event("e1")]), timeout=10).accepted_count == 1
        after = two.Recommend(gpb.RecommendRequest(user_id=USER, page_size=5), timeout=10)
        assert [r.product.product_id for r in after.results] == [BOUGHT, OTHER]
        # Ranking is down in this setup; the event store is not, so that is the only degradation.
        assert [x.stage for x in after.degradations] == [cpb.STAGE_RANKING]


def test_same_event_id_sent_to_both_replicas_is_stored_once(replicas, pg_dsn):
    (_, addr1), (_, addr2) = replicas
    with grpc.insecure_channel(addr1) as ch1, grpc.insecure_channel(addr2) as ch2:
        request = gpb.RecordEventsRequest(events=[_event("same")])
        first = gpb_grpc.GatewayServiceStub(ch1).RecordEvents(request, timeout=10)
        second = gpb_grpc.GatewayServiceStub(ch2).RecordEvents(request, timeout=10)
        assert (first.accepted_count, first.duplicate_count) == (1, 0)
        assert (second.accepted_count, second.duplicate_count) == (0, 1)
        # Same id, another product: reported, not merged.
        with pytest.raises(grpc.RpcError) as info:
            gpb_grpc.GatewayServiceStub(ch2).RecordEvents(
                gpb.RecordEventsRequest(events=[_event("same", product=OTHER)]), timeout=10
            )
        assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS and "events[0].event_id" in info.value.details()
    assert _stored(pg_dsn) == ["same"]


def test_kill_9_during_a_stream_of_record_events_loses_no_acknowledged_event(replicas, pg_dsn):
    (victim, addr1), (_, addr2) = replicas
    acknowledged: list[str] = []
    failed = threading.Event()

    def stream() -> None:
        with grpc.insecure_channel(addr1) as channel:
            stub = gpb_grpc.GatewayServiceStub(channel)
            while not failed.is_set():
                ids = [uuid.uuid4().hex for _ in range(5)]
                try:
                    stub.RecordEvents(gpb.RecordEventsRequest(events=[_event(i) for i in ids]), timeout=5)
                except grpc.RpcError:
                    failed.set()
                    return
                acknowledged.extend(ids)

    writer = threading.Thread(target=stream)
    writer.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 100 and time.monotonic() < deadline and not failed.is_set():
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)  # our own child, by pid, mid-stream
    writer.join(timeout=30)
    assert failed.is_set() and len(acknowledged) >= 100
    stored = set(_stored(pg_dsn))
    assert set(acknowledged) <= stored
    # The surviving replica keeps recording.
    with grpc.insecure_channel(addr2) as channel:
        assert (
            gpb_grpc.GatewayServiceStub(channel)
            .RecordEvents(gpb.RecordEventsRequest(events=[_event("after-kill")]), timeout=10)
            .accepted_count
            == 1
        )


def test_unreachable_database_is_unavailable_with_retry_info_and_recommend_degrades(
    artifacts, retrieval_addr, tmp_path
):
    proc, addr = _start_gateway(
        artifacts, retrieval_addr, f"postgresql://postgres@127.0.0.1:{free_port()}/shop", tmp_path / "gateway.log"
    )
    try:
        wait_healthy(addr, 60, proc, LIVENESS)  # degraded on purpose: never ready (ranking is down)
        with grpc.insecure_channel(addr) as channel:
            stub = gpb_grpc.GatewayServiceStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                stub.RecordEvents(gpb.RecordEventsRequest(events=[_event("e1")]), timeout=10)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            status = rpc_status.from_call(info.value)
            retry = error_details_pb2.RetryInfo()
            assert status.details[0].Unpack(retry) and retry.retry_delay.seconds >= 1
            page = stub.Recommend(gpb.RecommendRequest(user_id=USER, page_size=5), timeout=10)
            assert [r.product.product_id for r in page.results] == [OTHER]
            assert cpb.STAGE_RETRIEVAL in [x.stage for x in page.degradations]
    finally:
        stop_process(proc)


def _sell(product: str, availability: int) -> catpb.UpsertProductsRequest:
    return catpb.UpsertProductsRequest(
        products=[
            catpb.Product(
                product_id=product,
                title=f"PRODUCT {product}",
                availability=availability,
                price=money_pb2.Money(currency_code="GBP", units=1, nanos=250_000_000),
            )
        ]
    )


def _recommended(stub: gpb_grpc.GatewayServiceStub) -> list[str]:
    return [
        r.product.product_id
        for r in stub.Recommend(gpb.RecommendRequest(user_id=USER, page_size=5), timeout=10).results
    ]


def test_catalogue_change_on_one_replica_reaches_the_other_within_two_seconds(replicas):
    (_, addr1), (_, addr2) = replicas
    with grpc.insecure_channel(addr1) as ch1, grpc.insecure_channel(addr2) as ch2:
        catalog, two = catpb_grpc.CatalogServiceStub(ch1), gpb_grpc.GatewayServiceStub(ch2)
        assert _recommended(two) == [OTHER]
        for availability, expected in ((cpb.AVAILABILITY_OUT_OF_STOCK, []), (cpb.AVAILABILITY_IN_STOCK, [OTHER])):
            catalog.UpsertProducts(_sell(OTHER, availability), timeout=10)
            start = time.monotonic()
            while _recommended(two) != expected:
                assert time.monotonic() - start < 2.0, "the other replica still serves the old availability"
                time.sleep(0.02)
        served = two.Recommend(gpb.RecommendRequest(user_id=USER, page_size=5), timeout=10).results[0]
        assert (served.price.units, served.price.nanos, served.availability) == (
            1,
            250_000_000,
            cpb.AVAILABILITY_IN_STOCK,
        )


def test_event_for_a_product_newer_than_the_catalogue_is_unjoined_then_joins(replicas):
    (_, addr1), (_, addr2) = replicas
    with grpc.insecure_channel(addr1) as ch1, grpc.insecure_channel(addr2) as ch2:
        one, two = gpb_grpc.GatewayServiceStub(ch1), gpb_grpc.GatewayServiceStub(ch2)
        recorded = one.RecordEvents(gpb.RecordEventsRequest(events=[_event("new1", product="NEW-1")]), timeout=10)
        assert (recorded.accepted_count, list(recorded.unjoined_product_ids)) == (1, ["NEW-1"])
        catpb_grpc.CatalogServiceStub(ch1).UpsertProducts(_sell("NEW-1", cpb.AVAILABILITY_IN_STOCK), timeout=10)
        # The other replica asks the shared store about products its view has not seen yet.
        again = two.RecordEvents(gpb.RecordEventsRequest(events=[_event("new2", product="NEW-1")]), timeout=10)
        assert (again.accepted_count, again.unjoined_count) == (1, 0)
