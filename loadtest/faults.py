"""The crash and load phases of `make chaos`: closed and open loops of Search/Recommend recording every answer,
readiness timelines, Triton and inner-service kills, overload and soak."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from shop.common.v1 import common_pb2 as cpb

from libs.bundles import load_bundle
from libs.config import artifacts_dir
from libs.stack import Stack
from loadtest.driver import request_messages
from loadtest.stats import percentiles_ms
from loadtest.suite import GATEWAY, SERVING, Figure

DEADLINE_S = 2.0


@dataclass
class Sample:
    start: float
    end: float
    rpc: str
    code: str
    degraded: bool = False
    retry_info: bool = False
    from_server: bool = False  # an error status built by a service (with details), not by the client's deadline
    stages: tuple[str, ...] = ()  # the degradations' stages, e.g. ("CATALOG",)


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
            stages = tuple(cpb.Stage.Name(x.stage).removeprefix("STAGE_") for x in resp.degradations)
            return Sample(start, time.monotonic(), rpc, "OK", bool(resp.degradations), stages=stages)
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


def supervised(stack: Stack) -> threading.Event:
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
            timed=True,
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
