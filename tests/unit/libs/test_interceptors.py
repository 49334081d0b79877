import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from libs import errors
from libs.interceptors import ERROR_DOMAIN, BearerAuthInterceptor, to_status


def _details(trailers) -> status_pb2.Status:
    ((key, value),) = trailers
    assert key == "grpc-status-details-bin"
    return status_pb2.Status.FromString(value)


def _error_info(trailers) -> error_details_pb2.ErrorInfo:
    info = error_details_pb2.ErrorInfo()
    assert _details(trailers).details[-1].Unpack(info)
    assert info.domain == ERROR_DOMAIN
    return info


def test_invalid_argument_carries_bad_request_with_fields():
    exc = errors.InvalidArgumentError(
        [errors.FieldViolation("page_size", "must not be negative"), errors.FieldViolation("user_id", "is required")]
    )
    code, message, trailers = to_status(exc, "gateway")
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert "page_size" in message
    bad = error_details_pb2.BadRequest()
    assert _details(trailers).details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["page_size", "user_id"]
    info = _error_info(trailers)
    assert info.reason == "INVALID_ARGUMENT_FIELD"
    assert dict(info.metadata) == {"service": "gateway", "fields": "page_size,user_id"}


def test_unavailable_carries_retry_info():
    code, _, trailers = to_status(
        errors.UnavailableError("retrieval down", retry_after_s=1.5, extra={"dependency": "retrieval"})
    )
    assert code is grpc.StatusCode.UNAVAILABLE
    retry = error_details_pb2.RetryInfo()
    assert _details(trailers).details[0].Unpack(retry)
    assert retry.retry_delay.seconds == 1 and retry.retry_delay.nanos == 500_000_000
    info = _error_info(trailers)
    assert info.reason == "DEPENDENCY_UNAVAILABLE" and dict(info.metadata) == {"dependency": "retrieval"}


def test_already_exists_names_each_resource_by_its_request_field():
    exc = errors.AlreadyExistsError(
        "shop.gateway.v1.Event",
        [errors.FieldViolation("events[2].event_id", "'e7' was stored with a different payload")],
    )
    code, message, trailers = to_status(exc)
    assert code is grpc.StatusCode.ALREADY_EXISTS and "events[2].event_id" in message
    info = error_details_pb2.ResourceInfo()
    assert _details(trailers).details[0].Unpack(info)
    assert (info.resource_type, info.resource_name) == ("shop.gateway.v1.Event", "events[2].event_id")


def test_failed_precondition_carries_its_reason():
    exc = errors.FailedPreconditionError("bundle b1 is no longer loaded", "BUNDLE_NOT_LOADED", {"bundle_id": "b1"})
    code, message, trailers = to_status(exc, "gateway")
    assert code is grpc.StatusCode.FAILED_PRECONDITION and "b1" in message
    info = _error_info(trailers)
    assert info.reason == "BUNDLE_NOT_LOADED" and dict(info.metadata) == {"service": "gateway", "bundle_id": "b1"}


def test_unknown_errors_are_masked_as_internal():
    code, message, trailers = to_status(KeyError("secret internals"))
    assert code is grpc.StatusCode.INTERNAL
    assert "secret" not in message
    assert _error_info(trailers).reason == "INTERNAL"
    assert "secret" not in str(_details(trailers))


@pytest.mark.parametrize(
    ("exc", "code", "reason"),
    [
        (errors.DeadlineError("late"), grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"),
        (errors.NotFoundError("gone"), grpc.StatusCode.NOT_FOUND, "RESOURCE_NOT_FOUND"),
    ],
)
def test_deadline_and_not_found(exc, code, reason):
    got, _, trailers = to_status(exc, "ranking")
    assert got is code
    info = _error_info(trailers)
    assert info.reason == reason and dict(info.metadata) == {"service": "ranking"}


class _Details:
    method = "/shop.gateway.v1.GatewayService/Search"
    invocation_metadata = (("authorization", "Bearer wrong"),)


class _AbortingContext:
    async def abort(self, code, details="", trailing_metadata=()):
        self.aborted = (code, details, trailing_metadata)


async def test_missing_token_is_unauthenticated_with_error_info():
    async def continuation(details):
        raise AssertionError("the call must not reach the service")

    handler = await BearerAuthInterceptor("right").intercept_service(continuation, _Details())
    context = _AbortingContext()
    await handler.unary_unary(object(), context)
    code, _, trailers = context.aborted
    assert code is grpc.StatusCode.UNAUTHENTICATED
    assert _error_info(trailers).reason == "UNAUTHENTICATED"


WRITE = "/shop.catalog.v1.CatalogService/UpsertProducts"
READ = "/shop.catalog.v1.CatalogService/GetProduct"


@pytest.mark.parametrize(
    ("read_token", "write_token", "method", "supplied", "expected"),
    [
        ("r", "w", WRITE, "Bearer w", None),
        ("r", "w", WRITE, "Bearer r", grpc.StatusCode.PERMISSION_DENIED),
        ("r", "w", WRITE, "", grpc.StatusCode.UNAUTHENTICATED),
        ("r", "w", READ, "Bearer w", None),  # the write token grants reads too
        ("r", "w", READ, "Bearer r", None),
        ("r", "w", READ, "Bearer x", grpc.StatusCode.UNAUTHENTICATED),
        ("r", None, WRITE, "Bearer r", grpc.StatusCode.PERMISSION_DENIED),  # auth on, no write token: writes closed
        (None, "w", READ, "", None),  # only writes guarded
        (None, "w", WRITE, "", grpc.StatusCode.UNAUTHENTICATED),
    ],
)
async def test_privileged_methods_need_the_write_token(read_token, write_token, method, supplied, expected):
    reached = []

    async def continuation(details):
        reached.append(details.method)
        return "handler"

    details = type("D", (), {"method": method, "invocation_metadata": (("authorization", supplied),)})()
    interceptor = BearerAuthInterceptor(read_token, write_token=write_token, privileged=frozenset({WRITE}))
    handler = await interceptor.intercept_service(continuation, details)
    if expected is None:
        assert handler == "handler" and reached == [method]
        return
    context = _AbortingContext()
    await handler.unary_unary(object(), context)
    assert context.aborted[0] is expected and reached == []


def test_bad_request_is_capped_and_counts_what_it_left_out():
    exc = errors.InvalidArgumentError(
        [errors.FieldViolation(f"events[{i}].event_id", "x" * 10_000) for i in range(500)]
    )
    code, message, trailers = to_status(exc, "gateway")
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    bad = error_details_pb2.BadRequest()
    assert _details(trailers).details[0].Unpack(bad)
    assert len(bad.field_violations) == 21
    assert bad.field_violations[-1].description == "480 more violations left out"
    assert _error_info(trailers).metadata["omitted_violations"] == "480"
    assert len(trailers[0][1]) + len(message) < 8 * 1024  # well inside gRPC's 16 KiB header limit


async def test_unparseable_requests_are_invalid_argument_not_unknown():
    """A string field that is not UTF-8 fails protobuf parsing; the caller must see INVALID_ARGUMENT naming it."""
    from shop.gateway.v1 import gateway_service_pb2 as gpb
    from shop.gateway.v1 import gateway_service_pb2_grpc as gpb_grpc

    from libs.interceptors import ObservabilityInterceptor

    class Gateway(gpb_grpc.GatewayServiceServicer):
        async def Search(self, request, context):
            return gpb.SearchResponse(variant=request.query)

    server = grpc.aio.server(interceptors=[ObservabilityInterceptor("gateway")])
    gpb_grpc.add_GatewayServiceServicer_to_server(Gateway(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(
                "/shop.gateway.v1.GatewayService/Search", response_deserializer=gpb.SearchResponse.FromString
            )
            assert (await call(gpb.SearchRequest(query="ok").SerializeToString(), timeout=5)).variant == "ok"
            named = []
            # field 1 (query), 2 bytes, not UTF-8; then a group nested past protobuf's depth limit
            for payload in (b"\x0a\x02\xff\xfe", b"\x0a\x02ok" + b"\x7b" * 200 + b"\x7c" * 200):
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await call(payload, timeout=5)
                assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
                status = status_pb2.Status.FromString(dict(info.value.trailing_metadata())["grpc-status-details-bin"])
                bad = error_details_pb2.BadRequest()
                assert status.details[0].Unpack(bad)
                named.append(bad.field_violations[0].field)
    finally:
        await server.stop(None)
    assert named == ["query", "request"]
