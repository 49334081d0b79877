"""Fault suite: the stack (supervised, as `make run` runs it) under hostile input, crashes and overload.

    python -m loadtest.chaos                         # make chaos: every phase, reports/chaos.{json,md}
    python -m loadtest.chaos --phases fuzz,triton --fuzz 1000    # the fast subset (also an integration test)
    python -m loadtest.chaos --soak-s 600            # adds the soak at half of peak throughput

Phases, each with its targets (printed with the figure measured; exit 1 when one misses):
- fuzz: requests generated from the proto descriptors with hostile values of every kind (loadtest/fuzz.py) over
  every method of every public service the gateway serves (found by reflection): 0 INTERNAL, 0 UNKNOWN,
  0 UNAVAILABLE; every INVALID_ARGUMENT names a field of the request; requests past 4 MiB get RESOURCE_EXHAUSTED;
  health SERVING afterwards; every user touched still gets OK. Then a tenth as many straight at each inner
  service's methods, same targets.
- triton: kill -9 Triton under a closed loop of Search/Recommend with explanations; the supervisor restarts it.
  Every answer OK or OK-flagged-degraded; the recovery timeline from the kill (relaunch, server ready, models
  loaded, readiness back, first clean answer), first clean answer <= 5 s after the kill; ranking and explanation
  readiness went NOT_SERVING and back (<= 2 s after the models loaded); no process of the killed Triton's group
  left.
- inner: kill -9 ranking, then explanation, then retrieval, under the same loop: ranking/explanation down = OK
  degraded answers only; retrieval down = OK or UNAVAILABLE with RetryInfo only; each is restarted and serves again.
- overload: open loop at 10x the measured peak for 30 s: admitted answers' p99 within their deadline, the rest
  RESOURCE_EXHAUSTED, every process alive afterwards.
- soak (opt-in, --soak-s): open loop at half of peak: 0 errors, RSS growth < 10 % per process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from shop.gateway.v1 import gateway_service_pb2 as gpb

from libs.bundles import load_bundle
from libs.config import REPO_ROOT, REPORTS_DIR, artifacts_dir
from loadtest.driver import request_messages
from loadtest.fuzz import Hostile, hostile_request, names_a_field
from loadtest.stats import percentiles_ms
from tools.stack import Stack

GATEWAY = gpb.DESCRIPTOR.services_by_name["GatewayService"]
SERVING = health_pb2.HealthCheckResponse.SERVING
DEADLINE_S = 2.0
FORBIDDEN = ("INTERNAL", "UNKNOWN", "UNAVAILABLE")


@dataclass
class Figure:
    name: str
    value: object
    target: str
    ok: bool

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.value}  (target {self.target})"


@dataclass
class Sample:
    start: float
    end: float
    rpc: str
    code: str
    degraded: bool = False
    retry_info: bool = False
    from_server: bool = False  # an error status built by a service (with details), not by the client's deadline


# ------------------------------------------------------------------------------------------------------ fuzz
def served_services(addr: str) -> list:
    """The project's services a server at `addr` serves, as it describes them through reflection (so a service added
    later is fuzzed without a line here)."""
    with grpc.insecure_channel(addr) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        pool = descriptor_pool.DescriptorPool(db)
        return [pool.FindServiceByName(name) for name in sorted(db.get_services()) if name.startswith("shop.")]


async def fuzz_stack(stack: Stack, n: int) -> tuple[list[Figure], dict]:
    """`n` hostile requests at each public service the gateway serves, a tenth as many (at least 100) at each service
    of every inner process: inner RPCs validate at their edge too."""
    figures, details = [], {}
    for name, addr in stack.addresses.items():
        for service in served_services(addr):
            f, details[service.full_name] = await fuzz(addr, n if name == "gateway" else max(n // 10, 100), service)
            figures += f
    return figures, details


def _unnamed(exc: grpc.aio.AioRpcError, method, req: Hostile) -> list[str]:
    """The fields an INVALID_ARGUMENT names that are not fields of the request (`<none>` when it names none).
    `request` counts as named only for bytes that cannot be parsed as a whole; the last violation of a long list,
    with no field, only says how many were left out (libs/interceptors.py)."""
    raw = dict(exc.trailing_metadata() or ()).get("grpc-status-details-bin", b"")
    fields = []
    for detail in status_pb2.Status.FromString(raw).details if raw else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields += [v.field for v in bad.field_violations if v.field or "left out" not in v.description]
    wrong = [f for f in fields if not (names_a_field(method.input_type, f) or (f == "request" and req.malformed))]
    return wrong if fields else ["<none>"]


async def fuzz(
    addr: str,
    n: int,
    service=GATEWAY,
    concurrency: int = 8,
    seed: int = 12,
) -> tuple[list[Figure], dict]:
    """`n` hostile requests over every method of `service` (a ServiceDescriptor) at `addr`; for the gateway, then
    a Recommend for each well-formed user id the requests touched. RESOURCE_EXHAUSTED is right only for requests
    past gRPC's size limit; every INVALID_ARGUMENT must name a field of the request."""
    rng = random.Random(seed)
    methods = list(service.methods)
    label = service.name
    codes: Counter = Counter()
    bad_examples: list[dict] = []
    unnamed: list[dict] = []
    oversize_answers: Counter = Counter()
    users: set[str] = set()
    queue: asyncio.Queue = asyncio.Queue()
    for _ in range(n):
        method = rng.choice(methods)
        queue.put_nowait((method, hostile_request(method.input_type, rng)))
    async with grpc.aio.insecure_channel(addr, options=[("grpc.max_send_message_length", 8 << 20)]) as channel:
        calls = {m.name: channel.unary_unary(f"/{service.full_name}/{m.name}") for m in methods}

        async def worker() -> None:
            while not queue.empty():
                method, req = queue.get_nowait()
                users.update(req.user_ids)
                try:
                    await calls[method.name](req.payload, timeout=10)
                    code = "OK"
                except grpc.aio.AioRpcError as exc:
                    code = exc.code().name
                    if code == "INVALID_ARGUMENT" and (names := _unnamed(exc, method, req)) and len(unnamed) < 1000:
                        unnamed.append({"method": method.name, "named": names[:3], "fields": req.hostile_fields[:5]})
                codes[code] += 1
                if req.oversize:
                    oversize_answers[code] += 1
                elif code == "RESOURCE_EXHAUSTED" and len(bad_examples) < 20:
                    bad_examples.append({"method": method.name, "code": code, "fields": req.hostile_fields[:10]})
                if code in FORBIDDEN and len(bad_examples) < 20:
                    bad_examples.append({"method": method.name, "code": code, "fields": req.hostile_fields[:10]})

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        touched = (
            sorted(u for u in users if u.isdigit() and len(u) <= 16)[:100]
            if service.full_name == GATEWAY.full_name
            else []
        )
        after: Counter = Counter()
        for user in touched:
            try:
                await calls["Recommend"](
                    gpb.RecommendRequest(user_id=user, page_size=5).SerializeToString(), timeout=10
                )
                after["OK"] += 1
            except grpc.aio.AioRpcError as exc:
                after[exc.code().name] += 1
    figures = [
        Figure(f"fuzz {label}: {code} of {n} hostile requests", codes[code], "0", codes[code] == 0)
        for code in FORBIDDEN
    ]
    figures.append(
        Figure(
            f"fuzz {label}: INVALID_ARGUMENT of {codes['INVALID_ARGUMENT']} not naming a request field",
            len(unnamed),
            "0",
            not unnamed,
        )
    )
    wrong_size = sum(k for c, k in oversize_answers.items() if c != "RESOURCE_EXHAUSTED")
    figures.append(
        Figure(
            f"fuzz {label}: past 4 MiB answered other than RESOURCE_EXHAUSTED, of {sum(oversize_answers.values())}",
            wrong_size,
            "0",
            wrong_size == 0,
        )
    )
    figures.append(
        Figure(
            f"fuzz {label}: health afterwards",
            health_pb2.HealthCheckResponse.ServingStatus.Name(health.status),
            "SERVING",
            health.status == SERVING,
        )
    )
    if service.full_name == GATEWAY.full_name:
        figures.append(
            Figure(
                "fuzz: users touched answered OK afterwards",
                f"{after['OK']}/{len(touched)}",
                "all",
                after["OK"] == len(touched) > 0,
            )
        )
    return figures, {
        "codes": dict(codes),
        "forbidden_examples": bad_examples,
        "after": dict(after),
        "unnamed_examples": unnamed[:20],
        "oversize_answers": dict(oversize_answers),
    }


# ------------------------------------------------------------------------------------------------------ load
class Loop:
    """Closed-loop callers (Search/Recommend mix, explanations on) recording every answer."""

    def __init__(self, addr: str, concurrency: int = 4, explain: bool = True) -> None:
        self.addr = addr
        self.concurrency = concurrency
        self.messages = request_messages()
        for _, msg in self.messages:
            msg.explain = explain
        self.samples: list[Sample] = []
        self.stop = asyncio.Event()

    async def one(self, calls: dict, rpc: str, msg: object, deadline_s: float = DEADLINE_S) -> Sample:
        start = time.monotonic()
        try:
            resp = await calls[rpc](msg, timeout=deadline_s)
            return Sample(start, time.monotonic(), rpc, "OK", bool(resp.degradations))
        except grpc.aio.AioRpcError as exc:
            trailers = dict(exc.trailing_metadata() or ())
            retry = b"RetryInfo" in trailers.get("grpc-status-details-bin", b"")
            return Sample(
                start,
                time.monotonic(),
                rpc,
                exc.code().name,
                retry_info=retry,
                from_server="grpc-status-details-bin" in trailers,
            )

    def calls(self, channel: grpc.aio.Channel) -> dict:
        def response(rpc: str):
            return message_factory.GetMessageClass(GATEWAY.methods_by_name[rpc].output_type).FromString

        return {
            rpc: channel.unary_unary(
                f"/{GATEWAY.full_name}/{rpc}",
                response_deserializer=response(rpc),
                request_serializer=lambda m: m.SerializeToString(),
            )
            for rpc in ("Search", "Recommend")
        }

    async def closed(self) -> None:
        async with grpc.aio.insecure_channel(self.addr) as channel:
            calls = self.calls(channel)

            async def caller(i: int) -> None:
                k = i
                while not self.stop.is_set():
                    rpc, msg = self.messages[k % len(self.messages)]
                    k += self.concurrency
                    self.samples.append(await self.one(calls, rpc, msg))

            await asyncio.gather(*(caller(i) for i in range(self.concurrency)))

    async def open(self, rate: float, duration_s: float) -> None:
        """Open loop: `rate` requests per second whatever the answers, for `duration_s`."""
        async with grpc.aio.insecure_channel(self.addr) as channel:
            calls = self.calls(channel)
            tasks = []
            start = time.monotonic()
            k = 0
            while (now := time.monotonic()) - start < duration_s:
                due = start + k / rate
                if due > now:
                    await asyncio.sleep(due - now)
                rpc, msg = self.messages[k % len(self.messages)]
                tasks.append(asyncio.ensure_future(self.one(calls, rpc, msg)))
                k += 1
            self.samples += await asyncio.gather(*tasks)


async def health_of(addr: str) -> bool:
    try:
        async with grpc.aio.insecure_channel(addr) as channel:
            resp = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=0.5)
            return resp.status == SERVING
    except grpc.aio.AioRpcError:
        return False


@dataclass
class Timeline:
    """Readiness of each service over time (polled every 0.1 s), plus Triton's (`triton`: it serves the current
    bundle's models)."""

    stack: Stack
    names: Sequence[str]
    events: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        import tritonclient.grpc.aio as tc

        triton = tc.InferenceServerClient(
            self.stack.triton.grpc_url,
            channel_args=[("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 200)],
        )
        try:
            while not stop.is_set():
                states = await asyncio.gather(*(health_of(self.stack.addresses[n]) for n in self.names))
                try:
                    # Ready = serving the current bundle's models (explicit model control: a relaunched server is
                    # up before the supervisor has loaded them, and nothing can be answered until then).
                    versions = load_bundle(artifacts_dir()).versions
                    ready = await asyncio.gather(
                        triton.is_server_ready(client_timeout=0.5),
                        *(triton.is_model_ready(m, v, client_timeout=0.5) for m, v in versions.items()),
                    )
                    triton_ready = all(bool(r) for r in ready)
                except Exception:  # noqa: BLE001 - down or restarting
                    triton_ready = False
                now = time.monotonic()
                for name, state in [*zip(self.names, states), ("triton", triton_ready)]:
                    seen = self.events.setdefault(name, [])
                    if not seen or seen[-1][1] != state:
                        seen.append((now, state))
                await asyncio.sleep(0.1)
        finally:
            await triton.close()

    def went_down_and_up(self, name: str, after: float) -> tuple[bool, float | None]:
        """(went NOT_SERVING after `after`, time it was SERVING again)."""
        seen = [(t, s) for t, s in self.events.get(name, []) if t >= after]
        down = next((t for t, s in seen if not s), None)
        up = next((t for t, s in seen if s and down is not None and t > down), None)
        return down is not None, up

    def back(self, name: str, after: float) -> float | None:
        """When `name` was first seen ready again after going down after `after`."""
        return self.went_down_and_up(name, after)[1]


def _supervised(stack: Stack) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=stack.supervise, args=(stop, 0.2), daemon=True).start()
    return stop


async def _wait(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.2)
    return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _not_ok(samples: Sequence[Sample]) -> Counter:
    return Counter(s.code for s in samples if s.code != "OK")


async def triton_kill(stack: Stack, warmup_s: float = 5.0, timeout_s: float = 180.0) -> tuple[list[Figure], dict]:
    """kill -9 Triton under load; the recovery timeline is measured from the kill, where users feel it: relaunch,
    server ready, the bundle's models loaded, ranking/explanation readiness back, first clean answer."""
    loop = Loop(stack.addresses["gateway"])
    timeline = Timeline(stack, ["ranking", "explanation", "retrieval", "gateway"])
    done = asyncio.Event()
    tasks = [asyncio.ensure_future(loop.closed()), asyncio.ensure_future(timeline.run(done))]
    await asyncio.sleep(warmup_s)
    victim = stack.triton.process
    killed_at = time.monotonic()
    os.kill(victim.pid, signal.SIGKILL)

    def clean() -> float | None:
        """End of the first answer that started after the kill and was OK and not degraded."""
        return min(
            (x.end for x in loop.samples if x.code == "OK" and not x.degraded and x.start > killed_at), default=None
        )

    back = await _wait(lambda: timeline.back("triton", killed_at) is not None, timeout_s)
    if back:
        await _wait(lambda: clean() is not None, 30)
        await asyncio.sleep(3)  # readiness settles
    loop.stop.set()
    done.set()
    await asyncio.gather(*tasks)
    orphans = _group_alive(victim.pid)
    during = [s for s in loop.samples if s.start >= killed_at]
    bad = _not_ok(during)
    degraded = sum(s.code == "OK" and s.degraded for s in during)

    def since_kill(t: float | None) -> float | None:
        return None if t is None else round(t - killed_at, 2)

    def launcher(t: float | None) -> float | None:  # the supervisor's own clock of the relaunched server
        return since_kill(t if t is not None and t > killed_at else None)

    server = stack.triton
    steps = {
        "relaunched": launcher(server.launched_at),
        "server ready": launcher(server.ready_at),
        "models loaded": launcher(server.loaded_at),
        **{
            f"{name} ready": since_kill(timeline.went_down_and_up(name, killed_at)[1])
            for name in ("ranking", "explanation")
        },
        "first clean answer": since_kill(clean()),
    }
    loaded_at = timeline.back("triton", killed_at)
    figures = [
        Figure("triton kill: answers neither OK nor OK-degraded", f"{sum(bad.values())} {dict(bad)}", "0", not bad),
        Figure(
            "triton kill: answers after the kill (degraded)",
            f"{len(during)} ({degraded})",
            "> 0",
            len(during) > 0 and degraded > 0,
        ),
        Figure(
            "triton kill: recovery, s after the kill",
            " -> ".join(f"{k} {v}" for k, v in steps.items()),
            "every step reached",
            None not in steps.values(),
        ),
        Figure(
            "triton kill: first clean answer, s after the kill",
            steps["first clean answer"],
            "<= 5",
            steps["first clean answer"] is not None and steps["first clean answer"] <= 5.0,
        ),
        Figure("triton kill: processes of the killed Triton's group left", int(orphans), "0", not orphans),
    ]
    for name in ("ranking", "explanation"):
        down, up = timeline.went_down_and_up(name, killed_at)
        lag = None if up is None or loaded_at is None else round(max(up - loaded_at, 0.0), 2)
        figures.append(
            Figure(
                f"triton kill: {name} readiness NOT_SERVING and back, s after the models loaded",
                f"down={down} back={lag}",
                "down, back <= 2",
                down and lag is not None and lag <= 2.0,
            )
        )
    return figures, {
        "codes": dict(Counter(s.code for s in during)),
        "degraded": degraded,
        "recovery_s": steps,
        "timeline": {k: [(round(t - killed_at, 2), s) for t, s in v] for k, v in timeline.events.items()},
    }


async def inner_kill(
    stack: Stack, name: str, warmup_s: float = 3.0, timeout_s: float = 180.0
) -> tuple[list[Figure], dict]:
    loop = Loop(stack.addresses["gateway"])
    timeline = Timeline(stack, [name, "gateway"])
    done = asyncio.Event()
    tasks = [asyncio.ensure_future(loop.closed()), asyncio.ensure_future(timeline.run(done))]
    await asyncio.sleep(warmup_s)
    victim = stack.processes[name]
    killed_at = time.monotonic()
    os.kill(victim.pid, signal.SIGKILL)
    back = await _wait(
        lambda: (
            stack.processes.get(name) is not victim
            and any(s for t, s in timeline.events.get(name, []) if t > killed_at + 0.5)
        ),
        timeout_s,
    )
    await asyncio.sleep(3)
    loop.stop.set()
    done.set()
    await asyncio.gather(*tasks)
    during = [s for s in loop.samples if s.start >= killed_at]
    if name == "retrieval":
        # Nothing useful can be answered without candidates: UNAVAILABLE with RetryInfo is the documented answer.
        bad = Counter(s.code for s in during if s.code != "OK" and not (s.code == "UNAVAILABLE" and s.retry_info))
        target = "0 (OK or UNAVAILABLE+RetryInfo only)"
    else:
        bad = _not_ok(during)
        target = "0"
    down, up = timeline.went_down_and_up(name, killed_at)
    figures = [
        Figure(f"{name} kill: answers outside the contract", f"{sum(bad.values())} {dict(bad)}", target, not bad),
        Figure(
            f"{name} kill: restarted by the supervisor, readiness NOT_SERVING and back",
            f"down={down} back={back}",
            "True",
            down and back,
        ),
    ]
    return figures, {
        "codes": dict(Counter(s.code for s in during)),
        "timeline": {k: [(round(t - killed_at, 2), s) for t, s in v] for k, v in timeline.events.items()},
    }


async def peak(stack: Stack, duration_s: float = 15.0) -> float:
    loop = Loop(stack.addresses["gateway"], concurrency=8, explain=False)
    task = asyncio.ensure_future(loop.closed())
    await asyncio.sleep(duration_s)
    loop.stop.set()
    await task
    return sum(s.code == "OK" for s in loop.samples) / duration_s


def _alive(stack: Stack) -> bool:
    return all(p.poll() is None for p in stack.processes.values()) and stack.triton.process.poll() is None


async def overload(
    stack: Stack, peak_rps: float, factor: float = 10.0, duration_s: float = 30.0
) -> tuple[list[Figure], dict]:
    loop = Loop(stack.addresses["gateway"], explain=False)
    restarts_before = len(stack.restarts)
    await loop.open(peak_rps * factor, duration_s)
    codes = Counter(s.code for s in loop.samples)
    admitted = [s.end - s.start for s in loop.samples if s.code != "RESOURCE_EXHAUSTED"]
    shed = [s.end - s.start for s in loop.samples if s.code == "RESOURCE_EXHAUSTED"]
    p99 = percentiles_ms(admitted, (99,))[0] if admitted else float("nan")
    other = {c: k for c, k in codes.items() if c not in ("OK", "RESOURCE_EXHAUSTED")}
    alive = _alive(stack) and len(stack.restarts) == restarts_before
    figures = [
        Figure(
            f"overload x{factor:.0f} ({peak_rps * factor:.0f} req/s offered): admitted p99, ms",
            round(p99, 1),
            f"<= {DEADLINE_S * 1e3:.0f}",
            p99 <= DEADLINE_S * 1e3,
        ),
        Figure(
            "overload: admitted / shed (RESOURCE_EXHAUSTED)",
            f"{codes['OK']} / {codes['RESOURCE_EXHAUSTED']}",
            "shed > 0",
            codes["RESOURCE_EXHAUSTED"] > 0,
        ),
        Figure(
            "overload: shed answers' p50 / p99, ms",
            [round(x, 1) for x in percentiles_ms(shed, (50, 99))] if shed else None,
            f"p50 <= 50, p99 <= {DEADLINE_S * 1e3:.0f}",
            bool(shed) and percentiles_ms(shed, (50,))[0] <= 50 and percentiles_ms(shed, (99,))[0] <= DEADLINE_S * 1e3,
        ),
        Figure("overload: other answers", other, "{}", not other),
        Figure("overload: every process alive, none restarted", alive, "True", alive),
    ]
    return figures, {
        "codes": dict(codes),
        "offered_rps": peak_rps * factor,
        "peak_rps": peak_rps,
        "server_side_errors": dict(Counter(s.code for s in loop.samples if s.from_server)),
    }


def _rss_kb(pid: int) -> int:
    """RSS of a process and its children (Triton's backend stubs), from /proc."""
    total = 0
    for child in [pid, *_descendants(pid)]:
        try:
            with open(f"/proc/{child}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (FileNotFoundError, StopIteration):
            pass
    return total


def _descendants(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out += [int(entry.name), *_descendants(int(entry.name))]
    return out


async def soak(stack: Stack, peak_rps: float, duration_s: float, warmup_s: float = 60.0) -> tuple[list[Figure], dict]:
    pids = {**{n: p.pid for n, p in stack.processes.items()}, "triton": stack.triton.process.pid}
    loop = Loop(stack.addresses["gateway"], explain=False)
    await loop.open(peak_rps / 2, warmup_s)
    before = {n: _rss_kb(p) for n, p in pids.items()}
    loop.samples.clear()
    await loop.open(peak_rps / 2, duration_s)
    after = {n: _rss_kb(p) for n, p in pids.items()}
    errors = _not_ok(loop.samples)
    growth = {n: round(100.0 * (after[n] - before[n]) / max(before[n], 1), 1) for n in pids}
    figures = [
        Figure(
            f"soak {duration_s:.0f} s at {peak_rps / 2:.1f} req/s: errors",
            f"{sum(errors.values())} {dict(errors)} of {len(loop.samples)}",
            "0",
            not errors,
        )
    ]
    figures += [Figure(f"soak: RSS growth {n}, %", g, "< 10", g < 10) for n, g in growth.items()]
    return figures, {"rss_kb_before": before, "rss_kb_after": after}


# ------------------------------------------------------------------------------------------------------ main
PHASES = ("fuzz", "triton", "inner", "overload")


async def run(stack: Stack, phases: Sequence[str], fuzz_n: int, soak_s: float) -> tuple[list[Figure], dict]:
    figures: list[Figure] = []
    details: dict = {}
    if "fuzz" in phases:
        f, details["fuzz"] = await fuzz_stack(stack, fuzz_n)
        figures += f
    if "triton" in phases:
        f, details["triton"] = await triton_kill(stack)
        figures += f
    if "inner" in phases:
        for name in ("ranking", "explanation", "retrieval"):
            await _ready(stack)
            f, details[f"kill_{name}"] = await inner_kill(stack, name)
            figures += f
    if "overload" in phases or soak_s:
        await _ready(stack)
        peak_rps = await peak(stack)
        details["peak_rps"] = round(peak_rps, 1)
        if "overload" in phases:
            f, details["overload"] = await overload(stack, peak_rps)
            figures += f
        if soak_s:
            await _ready(stack)
            f, details["soak"] = await soak(stack, peak_rps, soak_s)
            figures += f
    return figures, details


async def _ready(stack: Stack, timeout_s: float = 180.0) -> None:
    """Every service SERVING (after a phase that broke something)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(await asyncio.gather(*(health_of(a) for a in stack.addresses.values()))):
            return
        await asyncio.sleep(0.5)
    raise TimeoutError("stack not SERVING again")


def write_reports(figures: Sequence[Figure], details: dict, meta: dict, out: Path = REPORTS_DIR) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "chaos.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "passed": all(f.ok for f in figures),
                "figures": [{"name": f.name, "value": f.value, "target": f.target, "ok": f.ok} for f in figures],
                "details": details,
            },
            indent=1,
            default=str,
        )
    )
    lines = [
        "# Fault suite (`make chaos`)",
        "",
        f"Command: `{meta['command']}`; {meta['when']}; {meta['machine']}.",
        "",
        "| figure | measured | target | |",
        "|---|---|---|---|",
    ]
    lines += [f"| {f.name} | {f.value} | {f.target} | {'pass' if f.ok else 'FAIL'} |" for f in figures]
    (out / "chaos.md").write_text("\n".join(lines) + "\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}")
    parser.add_argument("--fuzz", type=int, default=10_000, help="hostile requests in the fuzz phase")
    parser.add_argument("--soak-s", type=float, default=0.0, help="soak duration (0 = no soak; the issue: 600)")
    parser.add_argument("--out", type=Path, default=REPORTS_DIR)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    import platform
    import sys

    args = parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("grpc_reflection").setLevel(logging.WARNING)  # one line per descriptor file otherwise
    phases = [p for p in args.phases.split(",") if p]
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(env={"SHOP_EVENTS_DB": str(Path(tmp) / "events.sqlite3")}, log_dir=REPO_ROOT / "build" / "chaos")
        print("starting the stack (Triton + 4 services, supervised) ...", flush=True)
        with stack:
            supervisor = _supervised(stack)
            try:
                figures, details = asyncio.run(run(stack, phases, args.fuzz, args.soak_s))
            finally:
                supervisor.set()
            details["restarts"] = stack.restarts
    meta = {
        "command": "python -m loadtest.chaos " + " ".join(argv if argv is not None else sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, no GPU",
    }
    write_reports(figures, details, meta, args.out)
    for f in figures:
        print(f.line(), flush=True)
    passed = all(f.ok for f in figures)
    print(
        f"chaos: {'PASSED' if passed else 'FAILED'} ({sum(f.ok for f in figures)}/{len(figures)} figures on "
        f"target); reports in {args.out}/chaos.md",
        flush=True,
    )
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
