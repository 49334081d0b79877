"""Distributed tracing with OpenTelemetry: a span for every RPC served and called and every Triton call, with the
W3C trace context carried in gRPC metadata (`traceparent`, `tracestate`) from the gateway to the inner services.

Off by default, at no cost: without `SHOP_TRACING` no tracer provider is installed and the API hands out
non-recording spans. `SHOP_TRACING=console` prints finished spans (JSON) on stderr; `SHOP_TRACING=otlp` exports
them over OTLP/gRPC to `OTEL_EXPORTER_OTLP_ENDPOINT` (default http://localhost:4317), batched; `SHOP_TRACING=file`
appends them, one JSON object per line, to `$SHOP_TRACING_DIR/<service>.jsonl` (what `make load` summarises into
its per-stage table, loadtest/traces.py). Sampling follows the standard `OTEL_TRACES_SAMPLER` variables (e.g.
parentbased_traceidratio with OTEL_TRACES_SAMPLER_ARG=0.1): the gateway decides, the inner services follow. The
current trace id is added to every JSON log line (libs.logs), so logs and traces join.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from libs.config import TracingSettings

TRACER = "shop"


def configure(service: str, settings: TracingSettings) -> None:
    """Install a tracer provider for `service` when tracing is on (settings.mode, SHOP_TRACING)."""
    mode = settings.mode
    if not mode:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": f"shop-{service}"}))
    if mode == "console":
        exporter = ConsoleSpanExporter()
    elif mode == "file":
        folder = settings.dir
        folder.mkdir(parents=True, exist_ok=True)
        out = open(folder / f"{service}.jsonl", "a", encoding="utf-8")  # noqa: SIM115 - open for the process' life
        exporter = ConsoleSpanExporter(out=out, formatter=lambda s: s.to_json(indent=None) + "\n")
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


# Probes and tools poll these every fraction of a second: traces of them would drown the ones of real requests.
UNTRACED = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER)


def span(name: str, kind: SpanKind, **kwargs: Any) -> AbstractContextManager[trace.Span]:
    """The current span for `name`: a new child span, or a non-recording one for untraced methods."""
    if name.startswith(UNTRACED):
        return nullcontext(trace.INVALID_SPAN)
    return tracer().start_as_current_span(name, kind=kind, **kwargs)


def current_trace_id() -> str:
    """Hex trace id of the active span, "" when none is recording (tracing off)."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""


class _MetadataGetter:
    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return None if value is None else [value]

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


def extract(metadata: Iterable[tuple[str, str | bytes]] | None) -> context.Context:
    """The caller's trace context from incoming gRPC metadata."""
    carrier = {k: v for k, v in (metadata or ()) if isinstance(v, str)}
    return propagate.extract(carrier, getter=_MetadataGetter())


def inject(metadata: Sequence[tuple[str, str]] | None) -> list[tuple[str, str]]:
    """Outgoing gRPC metadata plus the current trace context."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [*(metadata or ()), *carrier.items()]


def mark_error(span: trace.Span, code: str) -> None:
    span.set_attribute("rpc.grpc.status_code", code)
    if code != "OK":
        span.set_status(Status(StatusCode.ERROR, code))


SERVER, CLIENT, INTERNAL = SpanKind.SERVER, SpanKind.CLIENT, SpanKind.INTERNAL
