"""Trace context crosses real gRPC hops on loopback: caller -> A -> B are one trace, each span the child of the
call that caused it; off by default; the trace id reaches the JSON logs."""
import json
import logging

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from libs import logs, tracing
from libs.channels import open_channel
from libs.interceptors import ObservabilityInterceptor

HEALTH = "grpc.health.v1.Health"


@pytest.fixture
def spans(monkeypatch):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "tracer", lambda: provider.get_tracer(tracing.TRACER))
    return exporter


async def _server(name: str, handlers) -> tuple[grpc.aio.Server, str]:  # noqa: ANN001
    server = grpc.aio.server(interceptors=[ObservabilityInterceptor(name)])
    handlers(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def test_one_trace_across_two_hops(spans):
    b, b_addr = await _server("b", lambda s: health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), s))
    b_channel = open_channel(b_addr, [HEALTH])

    async def call_b(request: bytes, context) -> bytes:  # noqa: ANN001
        await health_pb2_grpc.HealthStub(b_channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        return b"ok"

    a, a_addr = await _server("a", lambda s: s.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "test.A", {"Call": grpc.unary_unary_rpc_method_handler(call_b)})]))
    try:
        async with open_channel(a_addr, ["test.A"]) as channel:
            assert await channel.unary_unary("/test.A/Call")(b"x", timeout=5) == b"ok"
    finally:
        await b_channel.close()
        await a.stop(None)
        await b.stop(None)
    got = {(s.kind, s.name): s for s in spans.get_finished_spans()}
    caller = got[(SpanKind.CLIENT, "/test.A/Call")]
    served_a = got[(SpanKind.SERVER, "/test.A/Call")]
    calls_b = got[(SpanKind.CLIENT, f"/{HEALTH}/Check")]
    served_b = got[(SpanKind.SERVER, f"/{HEALTH}/Check")]
    assert len({s.context.trace_id for s in (caller, served_a, calls_b, served_b)}) == 1
    assert served_a.parent.span_id == caller.context.span_id
    assert calls_b.parent.span_id == served_a.context.span_id
    assert served_b.parent.span_id == calls_b.context.span_id
    assert served_b.attributes["rpc.grpc.status_code"] == "OK"


def test_off_by_default_and_trace_id_in_logs(spans, capsys):
    tracing.configure("x", mode="")  # nothing installed: the API's non-recording spans
    assert tracing.current_trace_id() == ""
    with pytest.raises(ValueError, match="SHOP_TRACING"):
        tracing.configure("x", mode="zipkin")
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
    with tracing.tracer().start_as_current_span("work") as span:
        line = json.loads(logs.JsonFormatter("svc").format(record))
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert "trace_id" not in json.loads(logs.JsonFormatter("svc").format(record))
