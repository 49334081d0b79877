"""Server interceptors: domain errors -> canonical status codes, metrics, access logs, bearer auth."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from prometheus_client import Counter, Histogram

from libs import errors, tracing
from libs.decoding import non_utf8_fields
from libs.logs import fields

log = logging.getLogger(__name__)

RPC_COUNT = Counter("shop_rpc_total", "RPCs handled", ["service", "method", "code"])
RPC_LATENCY = Histogram(
    "shop_rpc_latency_seconds",
    "RPC handling latency",
    ["service", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

# Probes and tooling must work without a token (reflection only where SHOP_OPEN_REFLECTION allows it).
HEALTH_PREFIX = "/grpc.health.v1."
OPEN_PREFIXES = (HEALTH_PREFIX, "/grpc.reflection.")


# google.rpc.ErrorInfo on every error status: `reason` is the stable, machine-readable cause callers may branch on
# (the message is for humans and may change); `domain` is this one constant for every service of the shop backend.
ERROR_DOMAIN = "shop.example.com"
REASON_INVALID_ARGUMENT = "INVALID_ARGUMENT_FIELD"
REASON_NOT_FOUND = "RESOURCE_NOT_FOUND"
REASON_ALREADY_EXISTS = "EVENT_ID_CONFLICT"
REASON_UNAVAILABLE = "DEPENDENCY_UNAVAILABLE"
REASON_DEADLINE = "DEADLINE_EXCEEDED"
REASON_UNAUTHENTICATED = "UNAUTHENTICATED"
REASON_PERMISSION_DENIED = "PERMISSION_DENIED"
REASON_INTERNAL = "INTERNAL"
REASON_OVERLOADED = "OVERLOADED"

# gRPC's default limit on response headers+trailers is 16 KiB (8 KiB in some proxies); a status that overflows it
# reaches the caller as a bare INTERNAL. So a BadRequest names at most this many violations, each cut short, and
# says how many it left out (in its last violation and in ErrorInfo.metadata["omitted_violations"]).
MAX_VIOLATIONS = 20
MAX_DETAIL_CHARS = 160
MAX_MESSAGE_CHARS = 1024


def _status(
    code: grpc.StatusCode, message: str, reason: str, metadata: dict[str, str], *details: object
) -> tuple[grpc.StatusCode, str, tuple]:
    message = message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message)
    # ErrorInfo last: callers that read details[0] as the BadRequest or RetryInfo keep working.
    for d in (*details, error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata)):
        packed = any_pb2.Any()
        packed.Pack(d)
        status.details.append(packed)
    return code, message, (("grpc-status-details-bin", status.SerializeToString()),)


def to_status(exc: BaseException, service: str = "") -> tuple[grpc.StatusCode, str, tuple]:
    """Map an exception to (code, message, trailing metadata). Unknown errors are masked.

    The details are BadRequest or RetryInfo where they apply, then an ErrorInfo (metadata names the `service`).
    """
    meta = {"service": service} if service else {}
    if isinstance(exc, errors.InvalidArgumentError):
        shown = [errors.FieldViolation(_cut(v.field), _cut(v.description)) for v in exc.violations[:MAX_VIOLATIONS]]
        omitted = len(exc.violations) - len(shown)
        message = str(errors.InvalidArgumentError(shown))
        if omitted:
            shown.append(errors.FieldViolation("", f"{omitted} more violations left out"))
            message += f" (and {omitted} more)"
            meta["omitted_violations"] = str(omitted)
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description) for v in shown
            ]
        )
        meta["fields"] = ",".join(dict.fromkeys(v.field for v in shown if v.field))
        return _status(grpc.StatusCode.INVALID_ARGUMENT, message, REASON_INVALID_ARGUMENT, meta, bad)
    if isinstance(exc, errors.AlreadyExistsError):
        infos = [
            error_details_pb2.ResourceInfo(
                resource_type=exc.resource_type, resource_name=r.field, description=r.description
            )
            for r in exc.resources
        ]
        meta["fields"] = ",".join(dict.fromkeys(r.field for r in exc.resources))
        return _status(grpc.StatusCode.ALREADY_EXISTS, str(exc), REASON_ALREADY_EXISTS, meta, *infos)
    if isinstance(exc, errors.NotFoundError):
        return _status(grpc.StatusCode.NOT_FOUND, str(exc), REASON_NOT_FOUND, meta)
    if isinstance(exc, errors.FailedPreconditionError):
        meta |= {k: str(v) for k, v in exc.extra.items()}
        return _status(grpc.StatusCode.FAILED_PRECONDITION, str(exc), exc.reason, meta)
    if isinstance(exc, errors.UnavailableError):
        retry = error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=int(exc.retry_after_s), nanos=int((exc.retry_after_s % 1) * 1e9))
        )
        meta |= {k: str(v) for k, v in exc.extra.items()}
        return _status(grpc.StatusCode.UNAVAILABLE, str(exc), REASON_UNAVAILABLE, meta, retry)
    if isinstance(exc, errors.DeadlineError):
        return _status(grpc.StatusCode.DEADLINE_EXCEEDED, str(exc) or "deadline exceeded", REASON_DEADLINE, meta)
    return _status(grpc.StatusCode.INTERNAL, "internal error", REASON_INTERNAL, meta)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"


def _parse(handler: grpc.RpcMethodHandler, raw: bytes) -> object:
    """The request message, parsed here rather than by gRPC: a message gRPC cannot parse (a string field that is not
    UTF-8, nesting past protobuf's limit, truncated bytes) would otherwise end as UNKNOWN without a field named."""
    if handler.request_deserializer is None:
        return raw
    try:
        return handler.request_deserializer(raw)
    except DecodeError as exc:
        message_cls = getattr(handler.request_deserializer, "__self__", None)  # the bound Message.FromString
        if fields := (non_utf8_fields(message_cls, raw) if isinstance(message_cls, type) else []):
            raise errors.InvalidArgumentError([errors.FieldViolation(f, "must be UTF-8") for f in fields]) from exc
        raise errors.invalid(
            "request", "is not a valid message of this method (string fields must be UTF-8, nesting at most 100 deep)"
        ) from exc


def _wrap(handler: grpc.RpcMethodHandler, fn: Callable) -> grpc.RpcMethodHandler:
    # No deserializer: `fn` receives the raw bytes and parses them with `_parse`.
    return grpc.unary_unary_rpc_method_handler(fn, response_serializer=handler.response_serializer)


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    """Counts, times and logs every unary RPC and turns domain errors into rich statuses."""

    def __init__(self, service: str) -> None:
        self.service = service

    async def intercept_service(self, continuation: Callable[..., Awaitable], details: grpc.HandlerCallDetails):
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        method = details.method.rsplit("/", 1)[-1]

        async def observed(raw: bytes, context: grpc.aio.ServicerContext) -> object:
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            # The server span continues the caller's trace (W3C trace context in the metadata); calls made while
            # serving, to inner services or Triton, become its children.
            with tracing.span(
                details.method,
                tracing.SERVER,
                context=tracing.extract(context.invocation_metadata()),
                attributes={"rpc.system": "grpc", "rpc.service": self.service, "rpc.method": method},
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                try:
                    return await inner(_parse(handler, raw), context)
                except errors.DomainError as exc:
                    code, message, trailers = to_status(exc, self.service)
                    await context.abort(code, message, trailing_metadata=trailers)
                except grpc.aio.AbortError:
                    code = context.code() or grpc.StatusCode.UNKNOWN
                    raise
                except Exception:
                    log.exception("unhandled error", extra=fields(method=method))
                    code, message, trailers = to_status(RuntimeError(), self.service)
                    await context.abort(code, message, trailing_metadata=trailers)
                finally:
                    elapsed = time.perf_counter() - start
                    tracing.mark_error(span, code.name)
                    RPC_COUNT.labels(self.service, method, code.name).inc()
                    RPC_LATENCY.labels(self.service, method).observe(elapsed)
                    # Shed calls are counted, not logged one by one: under overload, hundreds of lines a second.
                    if code not in (grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED):
                        log.info("rpc failed", extra=fields(method=method, code=code.name, ms=round(elapsed * 1e3, 2)))

        return _wrap(handler, observed)


class BearerAuthInterceptor(grpc.aio.ServerInterceptor):
    """Rejects calls without `authorization: Bearer <token>` (constant-time compares).

    `privileged` methods (full names, e.g. "/shop.catalog.v1.CatalogService/UpsertProducts") need `write_token`: the
    read token there is PERMISSION_DENIED, and with no write token configured they are denied to everyone (a
    deployment that turned auth on never leaves writes open by omission). Every other method accepts either token;
    `token` None leaves them open (only writes guarded).
    """

    def __init__(
        self,
        token: str | None,
        open_prefixes: tuple[str, ...] = OPEN_PREFIXES,
        write_token: str | None = None,
        privileged: frozenset[str] = frozenset(),
    ) -> None:
        self.expected = f"Bearer {token}".encode() if token else None
        self.expected_write = f"Bearer {write_token}".encode() if write_token else None
        self.open_prefixes = open_prefixes
        self.privileged = privileged
        self.denial = _status(
            grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token", REASON_UNAUTHENTICATED, {}
        )
        self.forbidden = _status(
            grpc.StatusCode.PERMISSION_DENIED,
            "this method needs the catalogue write token",
            REASON_PERMISSION_DENIED,
            {},
        )

    def _verdict(self, method: str, supplied: bytes) -> tuple | None:
        """None to let the call through, else the status to abort it with."""
        is_write = self.expected_write is not None and hmac.compare_digest(supplied, self.expected_write)
        is_read = self.expected is not None and hmac.compare_digest(supplied, self.expected)
        if method in self.privileged:
            return None if is_write else self.forbidden if is_read else self.denial
        return None if self.expected is None or is_read or is_write else self.denial

    async def intercept_service(self, continuation: Callable[..., Awaitable], details: grpc.HandlerCallDetails):
        if details.method.startswith(self.open_prefixes):
            return await continuation(details)
        supplied = str(dict(details.invocation_metadata or ()).get("authorization", "")).encode()
        verdict = self._verdict(details.method, supplied)
        if verdict is None:
            return await continuation(details)

        async def deny(request: object, context: grpc.aio.ServicerContext) -> None:
            await context.abort(*verdict)

        return grpc.unary_unary_rpc_method_handler(deny)


class AdmissionInterceptor(grpc.aio.ServerInterceptor):
    """At most `limit` RPCs in flight (health and reflection exempt), and at most `max_waiting` more waiting for a
    slot, each for at most `max_wait_s` (and a quarter of its remaining deadline); anything else RESOURCE_EXHAUSTED.

    Without it an overloaded service queues every call and answers all of them late (p99 past any deadline); with
    it the admitted calls keep their latency and the rest learn at once to back off or go elsewhere. The short,
    bounded wait absorbs bursts (a stall of the machine); within `calm_s` of a call being shed nothing waits, so
    under sustained overload the wait does not eat the admitted calls' deadlines (measured: 22 of 18,000 calls
    ran out at 10x load with the wait always on). Not retried by our channels' retry policy (only UNAVAILABLE is),
    so overload is not multiplied.
    """

    def __init__(
        self,
        limit: int,
        max_waiting: int | None = None,
        max_wait_s: float = 0.5,
        calm_s: float = 1.0,
        retry_after_s: float = 0.25,
    ) -> None:
        self.slots = asyncio.Semaphore(limit)
        self.max_waiting = limit if max_waiting is None else max_waiting
        self.max_wait_s = max_wait_s
        self.calm_s = calm_s
        self.waiting = 0
        self.last_shed = -float("inf")
        retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(nanos=int(retry_after_s * 1e9)))
        self.overloaded = _status(
            grpc.StatusCode.RESOURCE_EXHAUSTED, f"overloaded: {limit} calls in flight", REASON_OVERLOADED, {}, retry
        )

    async def _admit(self, context: grpc.aio.ServicerContext) -> bool:
        if not self.slots.locked():
            await self.slots.acquire()  # a free slot: does not wait
            return True
        now = time.monotonic()
        remaining = context.time_remaining()
        wait = self.max_wait_s if remaining is None else min(self.max_wait_s, remaining / 4)
        if self.waiting >= self.max_waiting or wait <= 0 or now - self.last_shed < self.calm_s:
            self.last_shed = now
            return False
        self.waiting += 1
        try:
            await asyncio.wait_for(self.slots.acquire(), wait)
            return True
        except asyncio.TimeoutError:
            self.last_shed = time.monotonic()
            return False
        finally:
            self.waiting -= 1

    async def intercept_service(self, continuation: Callable[..., Awaitable], details: grpc.HandlerCallDetails):
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None or details.method.startswith(OPEN_PREFIXES):
            return handler
        inner = handler.unary_unary

        async def admitted(request: object, context: grpc.aio.ServicerContext) -> object:
            if not await self._admit(context):
                await context.abort(*self.overloaded)
            try:
                return await inner(request, context)
            finally:
                self.slots.release()

        return grpc.unary_unary_rpc_method_handler(
            admitted, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )
