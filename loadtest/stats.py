"""Statistics, table and chart of a load run: pure functions over recorded samples (unit-tested on synthetic data).

A sample is one finished request: which target and RPC, latency, final status code name ("OK", "UNAVAILABLE", ...)
and whether the answer was degraded. `summarise` turns the samples of one (target, concurrency) step into a row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Sample:
    rpc: str
    latency_s: float
    code: str = "OK"
    degraded: bool = False


STAGES = ("retrieval", "ranking", "explanation")  # gateway stages timed by the in-process floor


@dataclass
class Row:
    target: str  # "gateway" or "echo" (the machine's bare gRPC ceiling)
    rpc: str  # "mix" for all RPCs of the step, else the RPC name
    concurrency: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: dict[str, int] = field(default_factory=dict)  # status code name -> count (OK excluded)
    degraded_share: float = 0.0  # of OK responses, share with non-empty `degradations`
    ceiling_share: float | None = None  # rps / echo rps at the same concurrency

    def as_dict(self) -> dict:
        return asdict(self)


def percentiles_ms(latencies_s: Sequence[float], qs: Iterable[float] = (50, 95, 99)) -> list[float]:
    """Latency percentiles in ms (linear interpolation, numpy's default); NaN when there is no sample."""
    if len(latencies_s) == 0:
        return [float("nan") for _ in qs]
    return [float(v) * 1000.0 for v in np.percentile(np.asarray(latencies_s, dtype=float), list(qs))]


def summarise(target: str, rpc: str, concurrency: int, duration_s: float, samples: Sequence[Sample]) -> Row:
    """One row. Latency percentiles over successful requests only: failures are often fast (refused) or pinned to
    the timeout, and would distort both ends; they are counted in `errors` instead. Throughput counts all answers."""
    ok = [s for s in samples if s.code == "OK"]
    p50, p95, p99 = percentiles_ms([s.latency_s for s in ok])
    errors = dict(sorted(Counter(s.code for s in samples if s.code != "OK").items()))
    degraded = sum(s.degraded for s in ok)
    return Row(
        target=target,
        rpc=rpc,
        concurrency=concurrency,
        duration_s=duration_s,
        requests=len(samples),
        rps=len(samples) / duration_s if duration_s > 0 else 0.0,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        errors=errors,
        degraded_share=degraded / len(ok) if ok else 0.0,
    )


def rows_for_step(target: str, concurrency: int, duration_s: float, samples: Sequence[Sample]) -> list[Row]:
    """The step's "mix" row, then one row per RPC (sorted) when more than one RPC was sent."""
    rows = [summarise(target, "mix", concurrency, duration_s, samples)]
    rpcs = sorted({s.rpc for s in samples})
    if len(rpcs) > 1:
        rows += [summarise(target, r, concurrency, duration_s, [s for s in samples if s.rpc == r]) for r in rpcs]
    return rows


def attach_ceiling(rows: list[Row]) -> list[Row]:
    """Set each gateway mix row's ceiling_share = its rps / the echo rps at the same concurrency."""
    echo = {r.concurrency: r.rps for r in rows if r.target == "echo" and r.rpc == "mix"}
    for r in rows:
        if r.target != "echo" and r.rpc == "mix" and echo.get(r.concurrency):
            r.ceiling_share = r.rps / echo[r.concurrency]
    return rows


def _fmt_ms(v: float) -> str:
    return "-" if v != v else f"{v:.1f}"  # NaN -> "-"


def markdown_table(rows: Sequence[Row]) -> str:
    head = (
        "| target | rpc | concurrency | requests | req/s | p50 ms | p95 ms | p99 ms | errors | degraded "
        "| vs echo ceiling |"
    )
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        errors = ", ".join(f"{k} {v}" for k, v in r.errors.items()) or "0"
        ceiling = "-" if r.ceiling_share is None else f"{r.ceiling_share:.1%}"
        lines.append(
            f"| {r.target} | {r.rpc} | {r.concurrency} | {r.requests} | {r.rps:.1f} | {_fmt_ms(r.p50_ms)} "
            f"| {_fmt_ms(r.p95_ms)} | {_fmt_ms(r.p99_ms)} | {errors} | {r.degraded_share:.1%} | {ceiling} |"
        )
    return "\n".join(lines)


def plot(rows: Sequence[Row], path: Path, title: str = "gateway load vs bare gRPC ceiling") -> Path:
    """Throughput (log scale, gateway vs echo) and gateway latency percentiles against concurrency."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers and CI
    import matplotlib.pyplot as plt

    mix = [r for r in rows if r.rpc == "mix"]
    fig, (ax_rps, ax_lat) = plt.subplots(1, 2, figsize=(11, 4.2))
    for target, style in (("gateway", "o-"), ("echo", "s--")):
        pts = sorted((r.concurrency, r.rps) for r in mix if r.target == target)
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax_rps.plot(xs, ys, style, label=target)
    ax_rps.set(
        xscale="log", yscale="log", xlabel="concurrency (in-flight requests)", ylabel="requests/s", title="throughput"
    )
    gw = sorted((r for r in mix if r.target == "gateway"), key=lambda r: r.concurrency)
    for attr, label in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
        if gw:
            ax_lat.plot([r.concurrency for r in gw], [getattr(r, attr) for r in gw], "o-", label=label)
    ax_lat.set(
        xscale="log",
        xlabel="concurrency (in-flight requests)",
        ylabel="latency ms (OK requests)",
        title="gateway latency",
    )
    levels = sorted({r.concurrency for r in mix})
    for ax in (ax_rps, ax_lat):
        if levels:  # label the measured levels, not powers of ten
            ax.set_xticks(levels, [str(c) for c in levels])
            ax.minorticks_off()
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    tmp.replace(path)  # never leave a half-written chart behind
    return path
