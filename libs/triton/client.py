"""Async Triton client: numpy in, numpy out, with timeouts, readiness and domain errors."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import tritonclient.grpc.aio as tc
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from libs import tracing
from libs.channels import service_config
from libs.errors import DeadlineError, UnavailableError

log = logging.getLogger(__name__)

CHANNEL_ARGS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    # gRPC's reconnect backoff grows to 120 s: after a Triton restart the first call would wait for the next attempt
    # (14.6 s seen). Capped at 1 s, a restarted Triton is found within a second of listening.
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Every replica a name resolves to (Kubernetes: the headless triton Service) gets calls, and a call refused by
    # one that is going away is retried on another: inference is a pure function, so a retry is always safe.
    ("grpc.enable_retries", 1),
    ("grpc.service_config", service_config(["inference.GRPCInferenceService"])),
]


class TritonClient:
    """Thin wrapper so services never touch tritonclient types directly."""

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._client = tc.InferenceServerClient(url, channel_args=CHANNEL_ARGS)

    async def close(self) -> None:
        await self._client.close()

    async def is_ready(self) -> bool:
        try:
            return bool(await self._client.is_server_ready(client_timeout=self.timeout_s))
        except InferenceServerException:
            return False

    async def is_model_ready(self, model: str, version: str = "") -> bool:
        try:
            return bool(await self._client.is_model_ready(model, version, client_timeout=self.timeout_s))
        except InferenceServerException:
            return False

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        timeout_s: float | None = None,
        version: str = "",
    ) -> dict[str, np.ndarray]:
        """One inference call (`version` "" = the newest Triton serves). Raises UnavailableError / DeadlineError,
        never tritonclient types."""
        wire_inputs = []
        for name, array in inputs.items():
            array = np.ascontiguousarray(array)
            t = tc.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            t.set_data_from_numpy(array)
            wire_inputs.append(t)
        wire_outputs = [tc.InferRequestedOutput(n) for n in outputs]
        timeout = self.timeout_s if timeout_s is None else timeout_s
        batch = next(iter(inputs.values())).shape[0] if inputs else 0
        with tracing.tracer().start_as_current_span(
            f"triton {model}",
            kind=tracing.CLIENT,
            record_exception=False,
            set_status_on_exception=False,
            attributes={"triton.model": model, "triton.version": version, "triton.batch": batch},
        ) as span:
            try:
                # `timeout` (microseconds) is what Triton's queue policy reads: a request still queued when it runs
                # out is rejected instead of run for a caller that has gone (training/export/triton_configs.py).
                # The trace context goes along, for a Triton that traces too.
                result = await self._client.infer(
                    model,
                    wire_inputs,
                    model_version=version,
                    outputs=wire_outputs,
                    client_timeout=timeout,
                    timeout=max(int(timeout * 1e6), 1),
                    headers=dict(tracing.inject([])),
                )
            except InferenceServerException as exc:
                status = (exc.status() or "").upper()
                tracing.mark_error(span, status or "UNKNOWN")
                if "DEADLINE" in status:
                    raise DeadlineError(f"{model}: triton deadline exceeded") from exc
                raise UnavailableError(f"{model}: {status or 'error'}: {exc.message()}") from exc
            tracing.mark_error(span, "OK")
        return {n: result.as_numpy(n) for n in outputs}
