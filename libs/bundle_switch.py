"""A service's side of a bundle rollout: serve one bundle, move to the one CURRENT names atomically.

- Triton calls are pinned to the bundle's model versions (`PinnedTriton`), so side files and weights never mix.
- Every `interval_s` the watcher reads CURRENT. On a new id it loads that bundle's state (off the event loop),
  waits until Triton serves the bundle's versions, builds a new core and swaps it in with one assignment. A servicer
  takes `BundleSwitch.current` in its constructor and calls it once per request: a request runs on the core it
  started with, the next one on the new core.
- Health: `ready()` is the service's readiness check (libs.readiness turns it into the services' health names):
  false while Triton does not serve the held bundle's versions; the name `bundle/<id>` is SERVING for the bundle
  held, so `tools.rollout` can see every service has switched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from grpc_health.v1 import health, health_pb2

from libs.bundles import current_id, load_bundle
from libs.serving_state import ServingState, load_serving_state
from libs.triton.client import TritonClient

log = logging.getLogger(__name__)

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


def bundle_health_name(bundle_id: str) -> str:
    return f"bundle/{bundle_id}"


class PinnedTriton:
    """The Triton client's calls, with each model pinned to the version its bundle was exported as."""

    def __init__(self, client: TritonClient, versions: Mapping[str, str]) -> None:
        self.client = client
        self.versions = dict(versions)

    async def infer(
        self, model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str], timeout_s: float | None = None
    ) -> dict[str, np.ndarray]:
        return await self.client.infer(model, inputs, outputs, timeout_s, version=self.versions.get(model, ""))

    async def version(self, model: str) -> str:
        return self.versions.get(model, "")

    async def serves(self, models: Sequence[str]) -> bool:
        """Triton has every one of `models` READY at this bundle's version."""
        return all(await asyncio.gather(*(self.client.is_model_ready(m, self.versions[m]) for m in models)))


# (state, pinned client) -> the service's core.
Build = Callable[[ServingState, PinnedTriton], Any]


class BundleSwitch:
    def __init__(
        self,
        artifacts_dir: Path,
        client: TritonClient,
        models: Sequence[str],
        build: Build,
        interval_s: float = 1.0,
        load: Callable[..., ServingState] = load_serving_state,
    ) -> None:
        self.artifacts_dir = Path(artifacts_dir)
        self.client = client
        self.models = tuple(models)
        self.build = build
        self.interval_s = interval_s
        self.load = load
        self.state = load(self.artifacts_dir, load_bundle(self.artifacts_dir))
        self.pinned = PinnedTriton(client, self.state.bundle.versions)
        self.core = build(self.state, self.pinned)

    def current(self) -> Any:
        """The core of the bundle held now."""
        return self.core

    @property
    def bundle_id(self) -> str:
        return self.state.bundle.id

    async def switch(self, bundle_id: str) -> bool:
        """Move to `bundle_id` if Triton serves its versions; False (still on the old one) otherwise."""
        bundle = load_bundle(self.artifacts_dir, bundle_id)
        pinned = PinnedTriton(self.client, bundle.versions)
        if not await pinned.serves(self.models):
            return False
        state = await asyncio.to_thread(self.load, self.artifacts_dir, bundle, self.state)
        self.core = self.build(state, pinned)
        self.state, self.pinned = state, pinned
        log.info("switched to bundle %s", bundle_id)
        return True

    async def ready(self) -> bool:
        """Readiness (libs.readiness): Triton serves every model of the held bundle at the bundle's version."""
        return await self.pinned.serves(self.models)

    async def ready_unless_triton_down(self) -> bool:
        """For a service that still answers without Triton (retrieval: lexical-only): ready while Triton is down,
        not while Triton is up but serves other versions than the held bundle's (that would mix bundles)."""
        return not await self.client.is_ready() or await self.ready()

    async def run(self, health_servicer: health.aio.HealthServicer, names: Sequence[str] = ()) -> None:
        """Follow CURRENT until cancelled; `bundle/<id>` is SERVING for the bundle held. The service's readiness
        names are libs.readiness's, fed by `ready` (so two loops never set the same name)."""
        failed = None
        await health_servicer.set(bundle_health_name(self.bundle_id), SERVING)
        while True:
            wanted = current_id(self.artifacts_dir)
            if wanted and wanted != self.bundle_id and wanted != failed:
                old = self.bundle_id
                try:
                    if await self.switch(wanted):
                        await health_servicer.set(bundle_health_name(self.bundle_id), SERVING)
                        await health_servicer.set(bundle_health_name(old), NOT_SERVING)
                except Exception:
                    log.exception("cannot switch to bundle %s; still serving %s", wanted, old)
                    failed = wanted  # not again (bundles are written whole): the rollout times out and reverts
            await asyncio.sleep(self.interval_s)
