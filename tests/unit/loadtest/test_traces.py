"""The per-stage table of `make load`, from span files as the services write them (libs.tracing file mode)."""

import json

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from loadtest import traces


def _span(service: str, kind: str, name: str, start: str, end: str) -> dict:
    return {
        "name": name,
        "kind": f"SpanKind.{kind}",
        "start_time": start,
        "end_time": end,
        "resource": {"attributes": {"service.name": f"shop-{service}"}},
    }


def test_summarise_groups_by_service_kind_and_name_within_the_window():
    spans = [
        _span("gateway", "SERVER", "/G/Search", "2026-12-01T10:00:00.000000Z", "2026-12-01T10:00:00.030000Z"),
        _span("gateway", "SERVER", "/G/Search", "2026-12-01T10:00:01.000000Z", "2026-12-01T10:00:01.010000Z"),
        _span("ranking", "CLIENT", "triton gnn_ranker", "2026-12-01T10:00:00.005000Z", "2026-12-01T10:00:00.009000Z"),
        _span("gateway", "SERVER", "/G/Search", "2026-12-01T10:05:00.000000Z", "2026-12-01T10:05:09.000000Z"),
    ]
    start = traces._seconds("2026-12-01T10:00:00Z")
    got = traces.summarise(spans, start, start + 60)
    assert set(got) == {"gateway server /G/Search", "ranking client triton gnn_ranker"}
    search = got["gateway server /G/Search"]
    assert search["calls"] == 2
    assert abs(search["mean_ms"] - 20.0) < 1e-3 and abs(search["p50_ms"] - 20.0) < 1e-3
    assert abs(got["ranking client triton gnn_ranker"]["p50_ms"] - 4.0) < 1e-3
    table = traces.markdown({1: got, 16: {}})
    assert table[2] == "| gateway | server | `/G/Search` | 20.0 / 20.0 (2) | - |"


def test_reads_what_the_sdk_writes(tmp_path):
    """Spans serialised the way libs.tracing's file mode writes them (Span.to_json, one per line) read back; a
    line cut short by a killed process is skipped."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop-ranking"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("/R/Rank", kind=SpanKind.SERVER):
        pass
    lines = [s.to_json(indent=None) for s in exporter.get_finished_spans()]
    (tmp_path / "ranking.jsonl").write_text("\n".join(lines) + "\n" + lines[0][:20] + "\n")
    spans = traces.read_spans(tmp_path)
    assert len(spans) == 1
    assert list(traces.summarise(spans)) == ["ranking server /R/Rank"]
    assert json.loads(lines[0])["name"] == "/R/Rank"


def test_tracing_env_samples_at_the_gateway_and_writes_files(tmp_path):
    env = traces.tracing_env(tmp_path, 0.25)
    assert env["SHOP_TRACING"] == "file" and env["SHOP_TRACING_DIR"] == str(tmp_path)
    assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio" and env["OTEL_TRACES_SAMPLER_ARG"] == "0.25"
