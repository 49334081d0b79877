"""Trace context crosses real gRPC hops on loopback: caller -> A -> B are one trace, each span the child of the
call that caused it; off by default; the trace id reaches the JSON logs."""

import json
import logging

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from libs import logs, tracing
from libs.channels import open_channel
from libs.config import TracingSettings
from libs.interceptors import ObservabilityInterceptor


@pytest.fixture
def spans(monkeypatch):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "tracer", lambda: provider.get_tracer(tracing.TRACER))
    return exporter


async def _server(name: str, handlers) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server(interceptors=[ObservabilityInterceptor(name)])
    handlers(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


def _echo_service(name: str, fn):
    return lambda s: s.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(name, {"Call": grpc.unary_unary_rpc_method_handler(fn)})]
    )


async def test_one_trace_across_two_hops(spans):
    async def echo(request: bytes, context) -> bytes:
        return request

    b, b_addr = await _server("b", _echo_service("test.B", echo))
    b_channel = open_channel(b_addr, ["test.B"])

    async def call_b(request: bytes, context) -> bytes:
        return await b_channel.unary_unary("/test.B/Call")(request, timeout=5)

    a, a_addr = await _server("a", _echo_service("test.A", call_b))
    try:
        async with open_channel(a_addr, ["test.A"]) as channel:
            assert await channel.unary_unary("/test.A/Call")(b"x", timeout=5) == b"x"
    finally:
        await b_channel.close()
        await a.stop(None)
        await b.stop(None)
    got = {(s.kind, s.name): s for s in spans.get_finished_spans()}
    caller = got[(SpanKind.CLIENT, "/test.A/Call")]
    served_a = got[(SpanKind.SERVER, "/test.A/Call")]
    calls_b = got[(SpanKind.CLIENT, "/test.B/Call")]
    served_b = got[(SpanKind.SERVER, "/test.B/Call")]
    assert len({s.context.trace_id for s in (caller, served_a, calls_b, served_b)}) == 1
    assert served_a.parent.span_id == caller.context.span_id
    assert calls_b.parent.span_id == served_a.context.span_id
    assert served_b.parent.span_id == calls_b.context.span_id
    assert served_b.attributes["rpc.grpc.status_code"] == "OK"


def test_off_by_default_and_trace_id_in_logs(spans, capsys, monkeypatch):
    tracing.configure("x", TracingSettings(mode=""))  # nothing installed: the API's non-recording spans
    assert tracing.current_trace_id() == ""
    monkeypatch.setenv("SHOP_TRACING", "zipkin")
    with pytest.raises(ValueError, match="SHOP_TRACING"):
        TracingSettings()
    monkeypatch.setenv("SHOP_TRACING", " File ")
    assert TracingSettings().mode == "file"
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
    with tracing.tracer().start_as_current_span("work") as span:
        line = json.loads(logs.JsonFormatter("svc").format(record))
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert "trace_id" not in json.loads(logs.JsonFormatter("svc").format(record))


def test_health_checks_are_not_traced(spans):
    with tracing.span("/grpc.health.v1.Health/Check", tracing.SERVER) as span:
        assert not span.is_recording()
    with tracing.span("/shop.gateway.v1.GatewayService/Search", tracing.SERVER) as span:
        assert span.is_recording()
    assert [s.name for s in spans.get_finished_spans()] == ["/shop.gateway.v1.GatewayService/Search"]


def test_file_mode_writes_one_json_span_per_line(tmp_path):
    """SHOP_TRACING=file (what `make load` uses for its per-stage table) in a process of its own: the tracer
    provider is process-global and must not leak into the other tests."""
    import os
    import subprocess
    import sys

    code = (
        "from libs import tracing\n"
        "tracing.configure('ranking', tracing.TracingSettings(mode='file'))\n"
        "with tracing.span('/R/Rank', tracing.SERVER):\n"
        "    pass\n"
    )
    env = {**os.environ, "SHOP_TRACING_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    lines = (tmp_path / "ranking.jsonl").read_text().splitlines()
    assert len(lines) == 1
    span = json.loads(lines[0])
    assert span["name"] == "/R/Rank" and span["resource"]["attributes"]["service.name"] == "shop-ranking"
