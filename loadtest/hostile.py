"""The fuzz phase of `make chaos`: hostile requests (loadtest/fuzz.py) at every method of every service a
process serves, found by reflection, judged by the answers' codes and the fields they name."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import grpc
from google.protobuf import descriptor_pool
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from shop.gateway.v1 import gateway_service_pb2 as gpb

from libs.stack import Stack
from loadtest.fuzz import Hostile, hostile_request, names_a_field
from loadtest.suite import GATEWAY, SERVING, Figure

FORBIDDEN = ("INTERNAL", "UNKNOWN", "UNAVAILABLE")


def served_services(addr: str) -> list:
    """The project's services a server at `addr` serves, as it describes them through reflection (so a service added
    later is fuzzed without a line here)."""
    with grpc.insecure_channel(addr) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        pool = descriptor_pool.DescriptorPool(db)
        return [pool.FindServiceByName(name) for name in sorted(db.get_services()) if name.startswith("shop.")]


async def fuzz_stack(stack: Stack, n: int) -> tuple[list[Figure], dict]:
    """`n` hostile requests at each public service the gateway serves, a tenth as many (at least 100) at each service
    of every inner process: inner RPCs validate at their edge too. Every call carries the stack's catalogue write
    token when it has one, so CatalogService's writes reach their validation rather than stopping at auth."""
    figures, details = [], {}
    token = stack.env.get("SHOP_CATALOG_WRITE_TOKEN")
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    for name, addr in stack.addresses.items():
        for service in served_services(addr):
            k = n if name == "gateway" else max(n // 10, 100)
            f, details[service.full_name] = await fuzz(addr, k, service, metadata=metadata)
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
    metadata: tuple = (),
) -> tuple[list[Figure], dict]:
    """`n` hostile requests over every method of `service` (a ServiceDescriptor) at `addr`; for the gateway, then
    a Recommend for each well-formed user id the requests touched. RESOURCE_EXHAUSTED is right only for requests
    past gRPC's size limit; every INVALID_ARGUMENT must name a field of the request. With `metadata` (a valid
    token) no call may stop at auth (UNAUTHENTICATED / PERMISSION_DENIED)."""
    rng = random.Random(seed)
    methods = list(service.methods)
    label = service.name
    codes: Counter = Counter()
    by_method: dict[str, Counter] = {m.name: Counter() for m in methods}
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
                    await calls[method.name](req.payload, timeout=10, metadata=metadata)
                    code = "OK"
                except grpc.aio.AioRpcError as exc:
                    code = exc.code().name
                    if code == "INVALID_ARGUMENT" and (names := _unnamed(exc, method, req)) and len(unnamed) < 1000:
                        unnamed.append({"method": method.name, "named": names[:3], "fields": req.hostile_fields[:5]})
                codes[code] += 1
                by_method[method.name][code] += 1
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
    if metadata:
        auth = {m: c["UNAUTHENTICATED"] + c["PERMISSION_DENIED"] for m, c in by_method.items()}
        figures.append(
            Figure(
                f"fuzz {label} (token sent): answered UNAUTHENTICATED or PERMISSION_DENIED",
                sum(auth.values()),
                "0",
                not any(auth.values()),
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
        "by_method": {m: dict(c) for m, c in by_method.items()},
        "forbidden_examples": bad_examples,
        "after": dict(after),
        "unnamed_examples": unnamed[:20],
        "oversize_answers": dict(oversize_answers),
    }
