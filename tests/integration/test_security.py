"""TLS, mTLS and the bearer token on the shared server bootstrap (in-process server on 127.0.0.1)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.config import SecuritySettings, ServiceSettings
from libs.grpc_server import Registration, build_server

PING = "/shop.test.v1.Ping/Ping"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        cwd=d,
    )
    for name in ("server", "client"):
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
            cwd=d,
        )
        (d / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "1",
            "-extfile",
            f"{name}.ext",
            cwd=d,
        )
    return d


def _ping_handler() -> grpc.GenericRpcHandler:
    async def ping(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return b"pong:" + request

    return grpc.method_handlers_generic_handler(
        "shop.test.v1.Ping",
        {"Ping": grpc.unary_unary_rpc_method_handler(ping, request_deserializer=None, response_serializer=None)},
    )


@pytest.fixture
async def secure_server(pki: Path):
    security = SecuritySettings(
        tls_cert=pki / "server.pem", tls_key=pki / "server.key", tls_client_ca=pki / "ca.pem", auth_token="s3cret"
    )
    settings = ServiceSettings(security=security)
    server, health, port = await build_server(
        "test",
        settings,
        "127.0.0.1:0",
        Registration(lambda s: s.add_generic_rpc_handlers((_ping_handler(),)), ["shop.test.v1.Ping"]),
    )
    await server.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    yield f"127.0.0.1:{port}"
    await server.stop(0)


def _creds(pki: Path, client_cert: bool) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.pem").read_bytes(),
        private_key=(pki / "client.key").read_bytes() if client_cert else None,
        certificate_chain=(pki / "client.pem").read_bytes() if client_cert else None,
    )


async def test_mtls_with_token_is_served_and_probes_stay_open(pki, secure_server):
    async with grpc.aio.secure_channel(secure_server, _creds(pki, True)) as channel:
        ping = channel.unary_unary(PING)
        assert await ping(b"x", metadata=(("authorization", "Bearer s3cret"),), timeout=5) == b"pong:x"
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await ping(b"x", metadata=(("authorization", "Bearer wrong"),), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        health = health_pb2_grpc.HealthStub(channel)
        assert (
            await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        ).status == health_pb2.HealthCheckResponse.SERVING


async def test_client_without_certificate_or_plaintext_is_refused(pki, secure_server):
    async with grpc.aio.secure_channel(secure_server, _creds(pki, False)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await channel.unary_unary(PING)(b"x", metadata=(("authorization", "Bearer s3cret"),), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    async with grpc.aio.insecure_channel(secure_server) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await channel.unary_unary(PING)(b"x", timeout=5)


async def test_project_channels_present_certificate_and_token(pki, secure_server):
    from libs.channels import open_channel

    client = SecuritySettings(
        tls_ca=pki / "ca.pem",
        tls_client_cert=pki / "client.pem",
        tls_client_key=pki / "client.key",
        auth_token="s3cret",
    )
    async with open_channel(secure_server, ["shop.test.v1.Ping"], client) as channel:
        assert await channel.unary_unary(PING)(b"y", timeout=5) == b"pong:y"


@pytest.fixture
async def prod_server(pki: Path):
    """Configured as overlays/prod configures every service: mTLS, token, reflection behind the token, and the
    plaintext health-only listener for kubelet probes."""
    from libs.grpc_server import health_server

    security = SecuritySettings(
        tls_cert=pki / "server.pem",
        tls_key=pki / "server.key",
        tls_client_ca=pki / "ca.pem",
        auth_token="s3cret",
        open_reflection=False,
    )
    server, health, port = await build_server(
        "test",
        ServiceSettings(security=security),
        "127.0.0.1:0",
        Registration(lambda s: s.add_generic_rpc_handlers((_ping_handler(),)), ["shop.test.v1.Ping"]),
    )
    probes, probe_port = health_server(health, "127.0.0.1:0")
    await server.start()
    await probes.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    yield f"127.0.0.1:{port}", f"127.0.0.1:{probe_port}"
    await probes.stop(0)
    await server.stop(0)


async def test_prod_configured_service_refuses_plaintext_tokenless_and_reflection_without_token(pki, prod_server):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    addr, probe_addr = prod_server
    async with grpc.aio.insecure_channel(addr) as channel:  # plaintext
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await channel.unary_unary(PING)(b"x", metadata=(("authorization", "Bearer s3cret"),), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    async with grpc.aio.secure_channel(addr, _creds(pki, True)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:  # TLS, no token
            await channel.unary_unary(PING)(b"x", timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED

        async def list_services(metadata=()):
            call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), metadata=metadata, timeout=5
            )
            return [s.name async for r in call for s in r.list_services_response.service]

        with pytest.raises(grpc.aio.AioRpcError) as info:
            await list_services()
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "shop.test.v1.Ping" in await list_services((("authorization", "Bearer s3cret"),))
    async with grpc.aio.insecure_channel(probe_addr) as channel:  # what kubelet's probe sees
        health = health_pb2_grpc.HealthStub(channel)
        assert (
            await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        ).status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await channel.unary_unary(PING)(b"x", metadata=(("authorization", "Bearer s3cret"),), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_catalogue_writes_need_the_write_token_and_reads_take_either(tmp_path):
    from google.type import money_pb2
    from shop.catalog.v1 import catalog_service_pb2 as cpb
    from shop.catalog.v1 import catalog_service_pb2_grpc as cpb_grpc

    from libs.products.catalog import Catalog
    from libs.products.store import SqliteProductStore
    from services.gateway.catalog_servicer import WRITE_METHODS, CatalogServicer

    store = SqliteProductStore(tmp_path / "catalog.sqlite3")
    servicer = CatalogServicer(Catalog(store))
    settings = ServiceSettings(security=SecuritySettings(auth_token="read", catalog_write_token="write"))
    server, _, port = await build_server(
        "gateway",
        settings,
        "127.0.0.1:0",
        Registration(
            lambda s: cpb_grpc.add_CatalogServiceServicer_to_server(servicer, s),
            ["shop.catalog.v1.CatalogService"],
            privileged=WRITE_METHODS,
        ),
    )
    await server.start()
    upsert = cpb.UpsertProductsRequest(
        products=[
            cpb.Product(
                product_id="N1", title="NEW", availability=1, price=money_pb2.Money(currency_code="GBP", units=1)
            )
        ]
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = cpb_grpc.CatalogServiceStub(channel)
            refusals = (("read", grpc.StatusCode.PERMISSION_DENIED), ("wrong", grpc.StatusCode.UNAUTHENTICATED))
            for token, code in refusals:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.UpsertProducts(upsert, metadata=(("authorization", f"Bearer {token}"),), timeout=5)
                assert info.value.code() is code
            assert store.get("N1") is None  # nothing of a refused write is stored
            done = await stub.UpsertProducts(upsert, metadata=(("authorization", "Bearer write"),), timeout=5)
            assert done.created_count == 1
            for token in ("read", "write"):
                got = await stub.GetProduct(
                    cpb.GetProductRequest(product_id="N1"), metadata=(("authorization", f"Bearer {token}"),), timeout=5
                )
                assert got.product.title == "NEW"
    finally:
        await server.stop(0)
        store.close()
