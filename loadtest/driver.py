"""`make load`: drive the gateway over gRPC on loopback at fixed concurrency levels, next to a bare gRPC echo server.

    python -m loadtest.driver [--levels 1,4,16] [--duration 15] [--gateway 127.0.0.1:50051]

Uses the gateway at --gateway (default $SHOP_GATEWAY_ADDR or 127.0.0.1:50051) when it answers health checks, else
starts the whole stack (libs.stack.Stack: Triton + 4 services) and stops it afterwards. Starts
loadtest/echo_server.py as a separate process for the machine's gRPC ceiling. Each level is a closed loop: exactly
`concurrency` requests in flight, for a bounded time and at most --max-requests requests. Payloads are the ghz data
files (real WANDS queries and customer ids, loadtest/payloads.py) mixed 3 Search : 1 Recommend. Writes
reports/load.md, reports/load.json and reports/load.png; stops every process it started, by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import grpc

from libs.config import REPO_ROOT, REPORTS_DIR, REPOSITORY, Addresses
from loadtest import payloads, stats, traces
from loadtest.stats import STAGES
from loadtest.echo_server import METHOD as ECHO_METHOD

from libs.readiness import is_serving
from libs.stack import stop_process

ROOT = REPO_ROOT
REPORTS = REPORTS_DIR
# (rpc, payload) -> (status code name, degraded?)
Call = Callable[[str, object], Awaitable[tuple[str, bool]]]


# ---------------------------------------------------------------------------------------------- the closed loop
async def run_step(
    call: Call, items: Sequence[tuple[str, object]], concurrency: int, duration_s: float, max_requests: int = 1_000_000
) -> tuple[list[stats.Sample], float]:
    """`concurrency` workers send items round-robin until the deadline or max_requests; returns samples, elapsed s.

    Requests already in flight at the deadline finish and count (elapsed includes them), so rps is not inflated.
    """
    samples: list[stats.Sample] = []
    counter = itertools.count()
    clock = time.perf_counter
    deadline = clock() + duration_s

    async def worker() -> None:
        while True:
            i = next(counter)
            if i >= max_requests or clock() >= deadline:
                return
            rpc, payload = items[i % len(items)]
            t0 = clock()
            code, degraded = await call(rpc, payload)
            samples.append(stats.Sample(rpc, clock() - t0, code, degraded))

    start = clock()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples, clock() - start


def mix(by_rpc: dict[str, Sequence[object]], weights: dict[str, int]) -> list[tuple[str, object]]:
    """Interleave payload lists by weight (e.g. 3 Search : 1 Recommend) until the longest list is used once."""
    iters = {rpc: itertools.cycle(items) for rpc, items in by_rpc.items() if items}
    rounds = max(-(-len(by_rpc[r]) // weights[r]) for r in iters)  # ceil
    return [(rpc, next(iters[rpc])) for _ in range(rounds) for rpc in iters for _ in range(weights[rpc])]


# ---------------------------------------------------------------------------------------------- targets
def gateway_call(channel: grpc.aio.Channel, timeout_s: float) -> Call:
    from shop.gateway.v1 import gateway_service_pb2_grpc as gpb_grpc

    stub = gpb_grpc.GatewayServiceStub(channel)
    methods = {"Search": stub.Search, "Recommend": stub.Recommend}

    async def call(rpc: str, request: object) -> tuple[str, bool]:
        try:
            response = await methods[rpc](request, timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name, False
        return "OK", len(response.degradations) > 0

    return call


def echo_call(channel: grpc.aio.Channel, timeout_s: float) -> Call:
    method = channel.unary_unary(ECHO_METHOD)  # bytes in, bytes out: no protobuf work on either side

    async def call(rpc: str, payload: object) -> tuple[str, bool]:
        try:
            await method(payload, timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name, False
        return "OK", False

    return call


def request_messages() -> list[tuple[str, object]]:
    """The payload mix as gateway request messages (parsed once, before any timing)."""
    from google.protobuf import json_format
    from shop.gateway.v1 import gateway_service_pb2 as gpb

    types = {"Search": gpb.SearchRequest, "Recommend": gpb.RecommendRequest}
    by_rpc = {rpc: [json_format.ParseDict(p, types[rpc]()) for p in payloads.load(rpc)] for rpc in payloads.RPCS}
    return mix(by_rpc, payloads.MIX)


# ---------------------------------------------------------------------------------------------- processes
def start_echo(timeout_s: float = 30.0) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadtest.echo_server", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""  # "listening 127.0.0.1:PORT"
        if not line.startswith("listening "):
            raise RuntimeError(f"echo server did not start (exit {proc.poll()}): {line!r}")
        addr = line.split()[1]
        deadline = time.monotonic() + timeout_s
        while not is_serving(addr):
            if time.monotonic() > deadline:
                raise TimeoutError(f"echo server {addr} not healthy")
            time.sleep(0.1)
    except BaseException:
        stop_process(proc)
        raise
    return proc, addr


# ---------------------------------------------------------------------------------------------- the run
async def measure(gateway_addr: str, echo_addr: str, args: argparse.Namespace) -> list[stats.Row]:
    items = request_messages()
    echo_items = [(rpc, req.SerializeToString()) for rpc, req in items]  # same byte sizes as the real requests
    rows: list[stats.Row] = []
    async with grpc.aio.insecure_channel(gateway_addr) as gw_ch, grpc.aio.insecure_channel(echo_addr) as echo_ch:
        gw, echo = gateway_call(gw_ch, args.timeout), echo_call(echo_ch, args.timeout)
        # Warm-up (not recorded): connections, lazy caches, Triton's first inferences.
        await run_step(gw, items, max(args.levels), args.warmup, args.max_requests)
        await run_step(echo, echo_items, max(args.levels), min(args.warmup, 1.0), args.max_requests)
        for c in args.levels:
            # Rotate the start so every level sees different payloads, not only the first few.
            offset = (c * 37) % len(items)
            samples, elapsed = await run_step(
                echo, echo_items[offset:] + echo_items[:offset], c, args.echo_duration, args.max_requests
            )
            rows += stats.rows_for_step("echo", c, elapsed, samples)[:1]  # per-RPC echo rows say nothing
            began = time.time()
            samples, elapsed = await run_step(gw, items[offset:] + items[:offset], c, args.duration, args.max_requests)
            args.level_windows[c] = (began, time.time())
            step = stats.rows_for_step("gateway", c, elapsed, samples)
            rows += step
            mix_row = step[0]
            print(
                f"  c={c}: gateway {mix_row.rps:.1f} req/s p50 {mix_row.p50_ms:.1f} ms, "
                f"errors {sum(mix_row.errors.values())}, degraded {mix_row.degraded_share:.0%}",
                flush=True,
            )
    if args.floor:
        rows += await measure_floor(items, args)
    return stats.attach_ceiling(rows)


async def measure_floor(items: list[tuple[str, object]], args: argparse.Namespace) -> list[stats.Row]:
    """The same mix through the same core logic in this process, no gRPC hop, ONNX Runtime instead of Triton."""
    from loadtest.floor import InProcessShop

    print("in-process floor (same cores, same ONNX files, no gRPC) ...", flush=True)
    shop = InProcessShop(deadline_s=args.timeout)
    rows: list[stats.Row] = []
    try:
        await run_step(shop.call, items, max(args.levels), args.warmup, args.max_requests)
        for c in args.levels:
            shop.times.seconds.clear()
            offset = (c * 37) % len(items)
            samples, elapsed = await run_step(
                shop.call, items[offset:] + items[:offset], c, args.duration, args.max_requests
            )
            step = stats.rows_for_step("floor", c, elapsed, samples)
            rows += step
            args.floor_stages[c] = shop.times.summary()
            print(f"  c={c}: floor {step[0].rps:.1f} req/s p50 {step[0].p50_ms:.1f} ms", flush=True)
    finally:
        shop.close()
    return rows


def targets(rows: list[stats.Row]) -> dict[str, dict]:
    """The ratios `make load` is judged by (issue 13), all measured in this run."""
    mix = {(r.target, r.concurrency): r for r in rows if r.rpc == "mix"}
    out: dict[str, dict] = {}
    top = max((c for t, c in mix if t == "gateway"), default=None)
    gw = mix.get(("gateway", top))
    fl = mix.get(("floor", top))
    if gw is not None and fl is not None and fl.rps > 0:
        out["gateway_vs_floor"] = {
            "value": gw.rps / fl.rps,
            "target": ">= 0.6",
            "ok": gw.rps / fl.rps >= 0.6,
            "concurrency": top,
        }
    if gw is not None and gw.p50_ms == gw.p50_ms:
        ratio = gw.p99_ms / gw.p50_ms
        out["p99_over_p50"] = {"value": ratio, "target": "<= 3", "ok": ratio <= 3.0, "concurrency": top}
    return out


def write_reports(rows: list[stats.Row], meta: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    goals = targets(rows)
    (out / "load.json").write_text(
        json.dumps({"meta": meta, "targets": goals, **goals, "rows": [r.as_dict() for r in rows]}, indent=1) + "\n"
    )
    stats.plot(rows, out / "load.png")
    md = [
        "# Load test: gateway on loopback (`make load`)",
        "",
        f"Run {meta['finished']}, {meta['machine']}. Closed loop per level (exactly `concurrency` requests in "
        f"flight), {meta['duration_s']} s per level for the gateway, {meta['echo_duration_s']} s for the echo "
        f"server; per-request timeout {meta['timeout_s']} s. Payloads: {meta['payloads']}.",
        "",
        "`echo` is a bare grpc.aio server (loadtest/echo_server.py, bytes echoed, no protobuf) driven by the same "
        "client: the machine's Python-gRPC ceiling. `vs echo ceiling` = gateway req/s / echo req/s at the same "
        "concurrency. Latency percentiles are over OK responses; `degraded` = share of OK responses whose "
        "`degradations` is non-empty. Client, services and Triton share the same cores, so this is a relative "
        f"measure, not a capacity figure. Stack: {meta['stack']}.",
        "",
        stats.markdown_table(rows),
        "",
        "![throughput and latency](load.png)",
        "",
        "`floor` = the same request mix through the same core logic in one process (loadtest/floor.py: no gRPC "
        "hop, the same model.onnx files in in-process ONNX Runtime instead of Triton).",
        "",
        "| target | value | goal | met |",
        "|---|---:|---|---|",
        *[
            f"| {name} (c={g['concurrency']}) | {g['value']:.2f} | {g['target']} | {'yes' if g['ok'] else 'NO'} |"
            for name, g in goals.items()
        ],
        "",
        "Per-stage wall time in the floor (p50 ms / mean ms per call, by concurrency):",
        "",
        "| concurrency | " + " | ".join(STAGES) + " |",
        "|---:|" + "---:|" * len(STAGES),
        *[
            f"| {c} | "
            + " | ".join(f"{st[s]['p50_ms']:.1f} / {st[s]['mean_ms']:.1f}" if s in st else "-" for s in STAGES)
            + " |"
            for c, st in sorted(meta.get("floor_stages", {}).items())
        ],
        "",
    ]
    if meta.get("trace_stages"):
        md += [
            f"Per-stage time of the served gateway, from its traces ({meta['trace_sample_ratio']:.0%} of requests "
            "sampled by the gateway, every span of a sampled request recorded; loadtest/traces.py). `client` = "
            "the caller's view of an RPC (includes the hop), `server` = the time the service spent on it:",
            "",
            *traces.markdown(meta["trace_stages"]),
            "",
        ]
    (out / "load.md").write_text("\n".join(md))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,4,16", type=lambda s: [int(x) for x in s.split(",") if x])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per level for the gateway")
    parser.add_argument("--echo-duration", type=float, default=5.0, help="seconds per level for the echo server")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=5.0, help="per-request deadline, seconds")
    parser.add_argument("--max-requests", type=int, default=200_000, help="hard cap per level")
    parser.add_argument("--gateway", default=Addresses().gateway)
    parser.add_argument("--out", type=Path, default=REPORTS)
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip the in-process floor (same mix, same cores, no gRPC, ONNX Runtime)",
    )
    args = parser.parse_args(argv)
    args.floor_stages = {}
    args.level_windows = {}
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stack = None
    echo_proc = None
    trace_dir = None
    try:
        if is_serving(args.gateway):
            gateway_addr, stack_desc = args.gateway, f"already running at {args.gateway}"
        else:
            from libs.rankers import specs
            from libs.stack import Stack

            missing = [m for m in specs() if not (REPOSITORY / m / "1" / "model.onnx").is_file()]
            if missing:
                print(
                    f"no gateway at {args.gateway} and no model weights for {', '.join(missing)} "
                    "(triton_models/*/1/model.onnx): run `make models` or start the stack first",
                    file=sys.stderr,
                )
                return 2

            print("starting the stack (Triton + 4 services; logs in build/logs/) ...", flush=True)
            trace_dir = REPO_ROOT / "build" / "traces" / datetime.now(UTC).strftime("load-%Y%m%dT%H%M%S")
            stack = Stack(env=traces.tracing_env(trace_dir)).start()
            gateway_addr = stack.addresses["gateway"]
            stack_desc = "started by the driver (libs.stack.Stack, Triton CPU configs)"
        echo_proc, echo_addr = start_echo()
        print(f"gateway {gateway_addr}, echo {echo_addr}; levels {args.levels}, {args.duration:g} s each", flush=True)
        rows = asyncio.run(measure(gateway_addr, echo_addr, args))
    finally:
        if echo_proc is not None:
            stop_process(echo_proc)
        if stack is not None:
            stack.stop()
    trace_stages = {}
    if trace_dir is not None:
        spans = traces.read_spans(trace_dir)
        trace_stages = {c: traces.summarise(spans, *window) for c, window in args.level_windows.items()}
    meta = {
        "trace_stages": trace_stages,
        "trace_sample_ratio": traces.SAMPLE_RATIO if trace_dir else None,
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}, "
        f"grpcio {grpc.__version__}",
        "levels": args.levels,
        "duration_s": args.duration,
        "echo_duration_s": args.echo_duration,
        "timeout_s": args.timeout,
        "stack": stack_desc,
        "floor_stages": args.floor_stages,
        "payloads": f"{len(payloads.load('Search'))} Search (WANDS queries) + {len(payloads.load('Recommend'))} "
        f"Recommend (customer ids), mixed {payloads.MIX['Search']}:{payloads.MIX['Recommend']}",
    }
    write_reports(rows, meta, args.out)
    print(stats.markdown_table(rows))
    print(f"wrote {args.out / 'load.md'}, load.json, load.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
