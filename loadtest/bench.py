"""`make bench`: what the pieces behind the gateway cost. A benchmark (numbers in reports/), not a timed test.

    python -m loadtest.bench [--quick] [--triton HOST:PORT --gateway HOST:PORT]
    python -m loadtest.bench --explanations-only [--trace DIR]   # section 3 alone; --trace: where its time goes

1. Rankers served by Triton (CPU config: Python backend + ONNX Runtime) vs the same model.onnx in-process with ONNX
   Runtime (libs.onnx_runner, same thread count), serial calls, batch sizes (scenarios B) 1..64 at C=200 candidates.
2. Triton's dynamic batching: B=1 requests from K concurrent clients; throughput, latency and the average batch
   Triton actually formed (its statistics API), against in-process ORT serial and pre-batched.
3. Explanation cost: gateway Search on the same queries/users with explain=false vs explain=true, and on-demand
   ExplainResult on 1 and on 5 results of the unexplained response.

Inputs are real when libs.features and the prepared data are available (real customers' histories, candidate
pools and popularity; query embedding = a catalogue title embedding, the text encoder's own space), else random
tensors of the right shapes/dtypes; the report says which. Starts the stack (libs.stack.Stack) unless both
--triton and --gateway are given, and stops it. Writes reports/bench.md and reports/bench.json (with
--explanations-only: prints section 3 and writes nothing). --trace DIR starts the stack with every request traced
(SHOP_TRACING=file, loadtest/traces.py) and prints the per-span table of section 3's calls: tracing adds its own
cost, so take the ratios from a run without it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from functools import partial
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from libs.config import REPORTS_DIR, REPOSITORY
from libs.model_io import ModelSpec
from libs.rankers import get as ranker, names as ranker_names
from loadtest import traces
from loadtest.traces import tracing_env

REPORTS = REPORTS_DIR
BATCHES = (1, 2, 4, 8, 16, 32, 64)
CANDIDATES = 200  # typical candidate count (model_io's opt_dynamic)
CONCURRENCY = (1, 4, 16)


# ---------------------------------------------------------------------------------------------- inputs
def random_inputs(spec: ModelSpec, batch: int, candidates: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random tensors of the spec's shapes/dtypes (-1 = candidates); ids in a small valid range, masks 0/1."""
    rng = np.random.default_rng(seed)
    out = {}
    for t in spec.inputs:
        shape = (batch, *(candidates if d == -1 else d for d in t.shape))
        if t.dtype == "int64":
            out[t.name] = rng.integers(0, 100, size=shape, dtype=np.int64)  # valid ids of any catalogue
        elif t.name.endswith("mask"):
            out[t.name] = (rng.random(shape) < 0.8).astype(t.np_dtype)
        else:
            out[t.name] = rng.standard_normal(shape).astype(t.np_dtype)
    return out


def check_inputs(spec: ModelSpec, inputs: dict[str, np.ndarray], batch: int) -> None:
    """Raise ValueError unless `inputs` has exactly the spec's tensors, dtypes and fixed dims."""
    if set(inputs) != set(spec.input_names):
        raise ValueError(f"{spec.name}: inputs {sorted(inputs)} != spec {sorted(spec.input_names)}")
    for t in spec.inputs:
        a = inputs[t.name]
        if (
            a.dtype != t.np_dtype
            or a.shape[0] != batch
            or len(a.shape) != len(t.shape) + 1
            or any(d not in (-1, s) for d, s in zip(t.shape, a.shape[1:], strict=True))
        ):
            raise ValueError(f"{spec.name}.{t.name}: {a.dtype}{a.shape} does not fit {t.dtype}{t.shape}")


class RealInputs:
    """Ranker inputs for real customers through libs.features (the same assembly the services use)."""

    def __init__(self, users: list[str]) -> None:
        import pandas as pd

        from libs.catalog.store import load_dataset
        from libs.config import ServiceSettings
        from libs.features import FeatureStore
        from libs.model_io import ITEM_EMBEDDINGS_FILE

        artifacts = ServiceSettings().artifacts_dir
        ds = load_dataset(artifacts)
        item_emb = np.load(artifacts / "models" / ITEM_EMBEDDINGS_FILE)
        now = ds.purchases["ts"].max() + pd.Timedelta(seconds=1)
        self.store = FeatureStore.build(ds.purchases, item_emb, now, ds.guest_sales, ds.items["product_id"])
        self.users = [u for u in users if u in self.store.users] or list(self.store.users)[:64]

    def one(self, model: str, i: int, candidates: int) -> dict[str, np.ndarray]:
        from libs import features as f

        ctx = self.store.user_context(self.users[i % len(self.users)])
        pool = f.candidate_pool(self.store, ctx)
        in_pool = set(pool.tolist())
        extra = [x for x in self.store.top_popular if x not in in_pool]
        cand = np.concatenate([pool, extra])[:candidates].astype(np.int64)  # exactly C: batches need equal C
        query = self.store.item_emb[(i * 7919) % self.store.n_items]
        r = ranker(model)
        return r.inputs(self.store, ctx, cand, query if r.reads_query else None)

    def batch(self, model: str, batch: int, candidates: int) -> dict[str, np.ndarray]:
        from libs.features import stack

        # What the served model reads (ids where it holds the title table), as ranking and explanation send it.
        return ranker(model).to_wire(stack([self.one(model, i, candidates) for i in range(batch)]))


# ---------------------------------------------------------------------------------------------- timing
def time_sync(fn: Callable[[], object], budget_s: float, min_n: int = 5, max_n: int = 2000) -> list[float]:
    fn()  # warm-up: first-call allocations and lazy initialisation are not what we measure
    out: list[float] = []
    end = time.perf_counter() + budget_s
    while len(out) < max_n and (len(out) < min_n or time.perf_counter() < end):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


async def time_async(
    fn: Callable[[], Awaitable[object]], budget_s: float, min_n: int = 5, max_n: int = 2000
) -> list[float]:
    await fn()
    out: list[float] = []
    end = time.perf_counter() + budget_s
    while len(out) < max_n and (len(out) < min_n or time.perf_counter() < end):
        t0 = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t0)
    return out


def ms(lat: list[float], q: float = 50) -> float:
    return float(np.percentile(lat, q)) * 1000.0 if lat else float("nan")


async def closed_loop(
    fn: Callable[[], Awaitable[object]], concurrency: int, duration_s: float, max_requests: int = 100_000
) -> tuple[list[float], float]:
    """`concurrency` callers in a bounded loop; returns latencies and elapsed seconds."""
    lat: list[float] = []
    end = time.perf_counter() + duration_s
    sent = 0

    async def worker() -> None:
        nonlocal sent
        while sent < max_requests and time.perf_counter() < end:
            sent += 1
            t0 = time.perf_counter()
            await fn()
            lat.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return lat, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------- sections
async def bench_batches(triton, ort, make_inputs, budget_s: float, batches: tuple[int, ...]) -> list[dict]:
    rows = []
    for model in ranker_names():
        outs = ranker(model).spec.output_names
        for b in batches:
            x = make_inputs(model, b)
            local = time_sync(partial(ort.run, model, x, outs), budget_s)
            served = await time_async(partial(triton.infer, model, x, outs, timeout_s=30), budget_s)
            rows.append(
                {
                    "model": model,
                    "batch": b,
                    "candidates": CANDIDATES,
                    "ort_p50_ms": ms(local),
                    "ort_p95_ms": ms(local, 95),
                    "triton_p50_ms": ms(served),
                    "triton_p95_ms": ms(served, 95),
                    "triton_over_ort": ms(served) / ms(local),
                    "ort_ms_per_scenario": ms(local) / b,
                    "triton_ms_per_scenario": ms(served) / b,
                }
            )
            print(f"  {model} B={b}: ORT {ms(local):.2f} ms, Triton {ms(served):.2f} ms", flush=True)
    return rows


async def triton_counts(url: str, model: str) -> tuple[int, int]:
    """(inference_count, execution_count) from Triton's statistics: their ratio = average batch formed."""
    import tritonclient.grpc.aio as tc

    client = tc.InferenceServerClient(url)
    try:
        stats = await client.get_inference_statistics(model_name=model, as_json=True)
    finally:
        await client.close()
    s = stats["model_stats"][0]
    return int(s.get("inference_count", 0)), int(s.get("execution_count", 0))


async def bench_dynamic_batching(
    triton, ort, make_inputs, url: str, duration_s: float, levels: tuple[int, ...]
) -> list[dict]:
    rows = []
    for model in ranker_names():
        outs = ranker(model).spec.output_names
        x1 = make_inputs(model, 1)
        ort_b1 = ms(time_sync(partial(ort.run, model, x1, outs), 1.0))
        for k in levels:
            before = await triton_counts(url, model)
            lat, elapsed = await closed_loop(partial(triton.infer, model, x1, outs, timeout_s=30), k, duration_s)
            after = await triton_counts(url, model)
            inferences, executions = after[0] - before[0], after[1] - before[1]
            xk = make_inputs(model, k)
            ort_bk = ms(time_sync(partial(ort.run, model, xk, outs), 1.0))
            rows.append(
                {
                    "model": model,
                    "concurrency": k,
                    "requests": len(lat),
                    "triton_rps": len(lat) / elapsed,
                    "triton_p50_ms": ms(lat),
                    "triton_p99_ms": ms(lat, 99),
                    "avg_batch_formed": inferences / executions if executions else float("nan"),
                    "ort_serial_b1_rps": 1000.0 / ort_b1,
                    "ort_prebatched_rps": 1000.0 * k / ort_bk,
                }
            )
            print(
                f"  {model} K={k}: Triton {len(lat) / elapsed:.0f} inf/s, batch {rows[-1]['avg_batch_formed']:.2f}",
                flush=True,
            )
    return rows


ON_DEMAND = (1, 5)  # results asked of ExplainResult ("Why this?" on one result, or on a few)


async def bench_explanations(gateway: str, n: int) -> list[dict]:
    """Serial gateway calls on the same queries/users: Search without and with explanations of its page of 20, and
    ExplainResult on 1 and on 5 results of the unexplained response, alternating so drift hits all alike."""
    import grpc
    from shop.gateway.v1 import gateway_service_pb2 as gpb
    from shop.gateway.v1 import gateway_service_pb2_grpc as gpb_grpc

    from loadtest import payloads

    reqs = [p for p in payloads.load("Search") if "userId" in p][:n]  # personalised: evidence to explain
    modes = ["Search explain=false", "Search explain=true", *(f"ExplainResult, {k} of its results" for k in ON_DEMAND)]
    lat: dict[str, list[float]] = {m: [] for m in modes}
    results: dict[str, list[int]] = {m: [] for m in modes}
    degraded = dict.fromkeys(modes, 0)
    errors = dict.fromkeys(modes, 0)

    async def timed(mode: str, call: Awaitable) -> object | None:
        t0 = time.perf_counter()
        try:
            resp = await call
        except grpc.aio.AioRpcError:
            errors[mode] += 1
            return None
        lat[mode].append(time.perf_counter() - t0)
        degraded[mode] += bool(getattr(resp, "degradations", []))
        results[mode].append(sum(r.HasField("explanation") for r in resp.results))
        return resp

    async with grpc.aio.insecure_channel(gateway) as ch:
        stub = gpb_grpc.GatewayServiceStub(ch)
        await stub.Search(gpb.SearchRequest(query=reqs[0]["query"], user_id=reqs[0]["userId"]), timeout=10)
        for p in reqs:
            for explain in (False, True):
                req = gpb.SearchRequest(query=p["query"], user_id=p["userId"], page_size=20, explain=explain)
                resp = await timed(modes[explain], stub.Search(req, timeout=10))
                if explain or resp is None or not resp.results:
                    continue
                for k, mode in zip(ON_DEMAND, modes[2:]):
                    ask = gpb.ExplainResultRequest(
                        attribution_token=resp.attribution_token,
                        product_ids=[r.product.product_id for r in resp.results[:k]],
                    )
                    await timed(mode, stub.ExplainResult(ask, timeout=10))
    return [
        {
            "mode": m,
            "requests": len(lat[m]),
            "p50_ms": ms(lat[m]),
            "p95_ms": ms(lat[m], 95),
            "mean_ms": statistics.fmean(lat[m]) * 1000 if lat[m] else float("nan"),
            "errors": errors[m],
            "degraded": degraded[m],
            "explained_results_per_response": statistics.fmean(results[m]) if results[m] else 0.0,
        }
        for m in modes
    ]


# ---------------------------------------------------------------------------------------------- report
def _f(v: float, digits: int = 2) -> str:
    return "-" if v != v else f"{v:.{digits}f}"


def markdown(meta: dict, batches: list[dict], dyn: list[dict], expl: list[dict]) -> str:
    md = [
        "# Benchmark: pieces behind the gateway (`make bench`)",
        "",
        f"Run {meta['finished']}, {meta['machine']}. Inputs: **{meta['inputs']}**. Triton: {meta['triton']}. "
        f"ONNX Runtime in-process: libs.onnx_runner, intra_op_num_threads={meta['ort_threads']}, same model.onnx "
        "files. Latencies are medians (p50) / p95 of serial calls unless stated. A benchmark on a shared, noisy "
        "machine: compare rows of one run, not runs of different days.",
        "",
        "## 1. Rankers: Triton vs in-process ONNX Runtime, by batch size",
        "",
        f"B = scenarios per call, C = {CANDIDATES} candidates each.",
        "",
        "| model | B | ORT p50 ms | ORT p95 ms | Triton p50 ms | Triton p95 ms | Triton / ORT | ORT ms/scenario "
        "| Triton ms/scenario |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in batches:
        md.append(
            f"| {r['model']} | {r['batch']} | {_f(r['ort_p50_ms'])} | {_f(r['ort_p95_ms'])} "
            f"| {_f(r['triton_p50_ms'])} | {_f(r['triton_p95_ms'])} | {_f(r['triton_over_ort'])}x "
            f"| {_f(r['ort_ms_per_scenario'], 3)} | {_f(r['triton_ms_per_scenario'], 3)} |"
        )
    md += [
        "",
        "## 2. Triton dynamic batching under concurrency (B=1 requests)",
        "",
        "`avg batch formed` = Triton's inference_count / execution_count over the step. ORT columns: what one "
        "in-process session does serially at B=1, and with the K requests pre-batched into one call.",
        "",
        "| model | concurrency K | requests | Triton inf/s | Triton p50 ms | Triton p99 ms | avg batch formed "
        "| ORT serial B=1 inf/s | ORT pre-batched B=K inf/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in dyn:
        md.append(
            f"| {r['model']} | {r['concurrency']} | {r['requests']} | {_f(r['triton_rps'], 0)} "
            f"| {_f(r['triton_p50_ms'])} | {_f(r['triton_p99_ms'])} | {_f(r['avg_batch_formed'])} "
            f"| {_f(r['ort_serial_b1_rps'], 0)} | {_f(r['ort_prebatched_rps'], 0)} |"
        )
    md += ["", "## 3. Explanation cost: gateway Search with and without explanations, and on demand", ""]
    if expl:
        md += [
            f"Same {expl[0]['requests']} personalised WANDS queries (real customer ids), serial, page_size 20, "
            "alternating; ExplainResult asks for the first 1 or 5 results of the unexplained response.",
            "",
            "| call | requests | p50 ms | p95 ms | mean ms | errors | degraded | explained results/response "
            "| p50 / unexplained Search |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        base = expl[0]["p50_ms"]
        for r in expl:
            md.append(
                f"| {r['mode']} | {r['requests']} | {_f(r['p50_ms'], 1)} | {_f(r['p95_ms'], 1)} "
                f"| {_f(r['mean_ms'], 1)} | {r['errors']} | {r['degraded']} "
                f"| {_f(r['explained_results_per_response'], 1)} | {_f(r['p50_ms'] / base, 2)}x |"
            )
    else:
        md.append("Not measured (no gateway).")
    return "\n".join(md) + "\n"


# ---------------------------------------------------------------------------------------------- main
def missing_models() -> list[str]:
    return [m for m in ranker_names() if not (REPOSITORY / m / "1" / "model.onnx").is_file()]


async def run(args: argparse.Namespace, triton_url: str, gateway: str | None) -> tuple[dict, list, list, list]:
    if args.explanations_only:
        print("3. explanation cost", flush=True)
        return _meta(args, "-"), [], [], await bench_explanations(gateway, args.queries)
    from libs.onnx_runner import OnnxModels
    from libs.triton.client import TritonClient

    from loadtest import payloads

    try:
        real = RealInputs([p["userId"] for p in payloads.load("Recommend")])
        inputs_label = (
            f"real (libs.features: {len(real.users)} customers' histories and candidate pools; "
            "query embedding = a catalogue title embedding)"
        )
        cache: dict[tuple[str, int], dict] = {}

        def make_inputs(model: str, b: int) -> dict[str, np.ndarray]:
            if (model, b) not in cache:
                cache[(model, b)] = real.batch(model, b, CANDIDATES)
            return cache[(model, b)]

        for model in ranker_names():  # fail here, not mid-benchmark, when the feature code does not fit the specs
            check_inputs(ranker(model).served_spec, make_inputs(model, 2), 2)
    except Exception as exc:  # noqa: BLE001 - any missing piece: fall back, and say so in the report
        inputs_label = f"SYNTHETIC random tensors of the right shapes/dtypes (real features unavailable: {exc!r})"

        def make_inputs(model: str, b: int) -> dict[str, np.ndarray]:
            return random_inputs(ranker(model).served_spec, b, CANDIDATES)

    print(f"inputs: {inputs_label}", flush=True)
    ort = OnnxModels(REPOSITORY, threads=args.ort_threads)
    triton = TritonClient(triton_url, timeout_s=30)
    try:
        print("1. batch sizes", flush=True)
        batches = await bench_batches(triton, ort, make_inputs, args.budget, args.batches)
        print("2. dynamic batching", flush=True)
        dyn = await bench_dynamic_batching(triton, ort, make_inputs, triton_url, args.duration, args.concurrency)
    finally:
        await triton.close()
    expl = []
    if gateway:
        print("3. explanation cost", flush=True)
        expl = await bench_explanations(gateway, args.queries)
    return _meta(args, inputs_label), batches, dyn, expl


def _meta(args: argparse.Namespace, inputs_label: str) -> dict:
    return {
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}",
        "inputs": inputs_label,
        "ort_threads": args.ort_threads,
        "candidates": CANDIDATES,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triton", help="use this Triton (host:port) instead of starting the stack")
    parser.add_argument("--gateway", help="use this gateway (host:port) for the explanation section")
    parser.add_argument("--budget", type=float, default=1.5, help="seconds of serial calls per measurement")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per dynamic-batching step")
    parser.add_argument("--queries", type=int, default=60, help="Search requests per arm in section 3")
    parser.add_argument("--ort-threads", type=int, default=1, help="match the Triton CPU configs")
    parser.add_argument("--quick", action="store_true", help="fewer sizes, shorter steps (smoke run)")
    parser.add_argument("--out", type=Path, default=REPORTS)
    parser.add_argument("--explanations-only", action="store_true", help="section 3 only, printed, nothing written")
    parser.add_argument("--trace", type=Path, help="trace every request into this folder; print section 3's spans")
    args = parser.parse_args(argv)
    args.batches, args.concurrency = BATCHES, CONCURRENCY
    if args.quick:
        args.batches, args.concurrency = (1, 8, 64), (1, 8)
        args.budget, args.duration, args.queries = 0.5, 2.0, 10
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if missing := missing_models():
        print(
            f"no ONNX weights for {', '.join(missing)} under triton_models/*/1/model.onnx: run `make models` first",
            file=sys.stderr,
        )
        return 2
    stack = None
    try:
        if args.triton and args.gateway:
            triton_url, gateway, desc = args.triton, args.gateway, f"given, {args.triton}"
        else:
            from libs.stack import Stack

            print("starting the stack (Triton + 4 services; logs in build/logs/) ...", flush=True)
            stack = Stack(env=tracing_env(args.trace, 1.0) if args.trace else {}).start()
            triton_url, gateway = stack.triton.grpc_url, stack.addresses["gateway"]
            desc = "started by the bench (pytriton's tritonserver 2.51, `cpu` configs: Python backend + ORT)"
        meta, batches, dyn, expl = asyncio.run(run(args, triton_url, gateway))
    finally:
        if stack is not None:
            stack.stop()
    meta["triton"] = desc
    if args.explanations_only:
        print("\n".join(markdown(meta, batches, dyn, expl).splitlines()[-len(expl) - 5 :]))
        if args.trace:
            spans = traces.read_spans(args.trace)
            # Only the on-demand calls' traces: ExplainResult in the gateway and everything it caused.
            ids = {x["context"]["trace_id"] for x in spans if x["name"].endswith("/ExplainResult")}
            ondemand = [x for x in spans if x["context"]["trace_id"] in ids]
            print("\n".join(traces.markdown({1: traces.summarise(ondemand)})))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(
        json.dumps({"meta": meta, "batch_sizes": batches, "dynamic_batching": dyn, "explanations": expl}, indent=1)
        + "\n"
    )
    text = markdown(meta, batches, dyn, expl)
    (args.out / "bench.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
