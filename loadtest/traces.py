"""Where a served request's time goes, from its traces: the per-stage table of `make load`.

The load driver starts the stack with `SHOP_TRACING=file` and a sampled share of requests (libs.tracing: the
gateway samples, the inner services follow), so every service appends its finished spans to
`<dir>/<service>.jsonl`. Here those spans are grouped by (service, span) within one load level's time window and
summarised (calls, p50, mean): the gateway's Search/Recommend, its calls to retrieval/ranking/explanation, the time
each inner service spends serving them, and each Triton call. A client span minus the server span of the same RPC
is the hop (serialisation, network, queueing in the server).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import numpy as np

# What the load driver sets for the services when it starts the stack: 1 request in 10 traced end to end.
SAMPLE_RATIO = 0.1


def tracing_env(folder: Path, ratio: float = SAMPLE_RATIO) -> dict[str, str]:
    return {
        "SHOP_TRACING": "file",
        "SHOP_TRACING_DIR": str(folder),
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": str(ratio),
    }


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def read_spans(folder: Path) -> list[dict]:
    """Every span the services wrote under `folder` (a line that does not parse, e.g. cut by a kill, is skipped)."""
    spans = []
    for path in sorted(Path(folder).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                spans.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return spans


def _key(span: dict) -> str:
    service = span.get("resource", {}).get("attributes", {}).get("service.name", "?").removeprefix("shop-")
    kind = str(span.get("kind", "")).removeprefix("SpanKind.").lower()
    return f"{service} {kind} {span['name']}"


def summarise(
    spans: Iterable[dict], start: float = float("-inf"), end: float = float("inf")
) -> dict[str, dict[str, float]]:
    """(service kind name) -> calls, p50_ms, mean_ms over the spans that started in [start, end) (epoch seconds)."""
    durations: dict[str, list[float]] = defaultdict(list)
    for span in spans:
        begun = _seconds(span["start_time"])
        if start <= begun < end:
            durations[_key(span)].append(_seconds(span["end_time"]) - begun)
    return {
        k: {"calls": len(v), "p50_ms": float(np.percentile(v, 50)) * 1000, "mean_ms": float(np.mean(v)) * 1000}
        for k, v in sorted(durations.items())
    }


def markdown(stages: dict[int, dict[str, dict[str, float]]]) -> list[str]:
    """One table: a row per (service, kind, span), a p50 / mean column per concurrency level."""
    levels = sorted(stages)
    keys = sorted({k for level in stages.values() for k in level})
    lines = [
        "| service | kind | span | " + " | ".join(f"c={c} p50 / mean ms (calls)" for c in levels) + " |",
        "|---|---|---|" + "---:|" * len(levels),
    ]
    for key in keys:
        service, kind, name = key.split(" ", 2)
        cells = [
            f"{s['p50_ms']:.1f} / {s['mean_ms']:.1f} ({s['calls']})" if (s := stages[c].get(key)) else "-"
            for c in levels
        ]
        lines.append(f"| {service} | {kind} | `{name}` | " + " | ".join(cells) + " |")
    return lines
