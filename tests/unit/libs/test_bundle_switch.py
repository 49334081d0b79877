"""A service's bundle switch: pinned versions, no switch before Triton serves the new bundle, truthful health."""

import asyncio
import json
from types import SimpleNamespace

import pytest
from grpc_health.v1 import health_pb2

from libs.bundle_switch import BundleSwitch, PinnedTriton, bundle_health_name
from libs.bundles import set_current
from training.bundles import write_bundle

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


class FakeTriton:
    def __init__(self, ready):
        self.ready = set(ready)
        self.calls = []
        self.up = True

    async def is_ready(self):
        return self.up

    async def is_model_ready(self, model, version=""):
        return self.up and (model, version) in self.ready

    async def infer(self, model, inputs, outputs, timeout_s=None, version=""):
        self.calls.append((model, version))
        return {}


class FakeHealth:
    def __init__(self):
        self.status = {}

    async def set(self, name, status):
        self.status[name] = status


def _bundle(root, number, parent=None):
    src = root / f"f{number}.json"
    src.write_text(json.dumps({"n": number}))
    return write_bundle(root, number, {"fusion.json": src}, {}, parent=parent, make_current=number == 1)


async def _until(condition, timeout_s=5.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def _load(artifacts_dir, bundle, previous=None):
    return SimpleNamespace(bundle=bundle)


async def test_pinned_calls_name_the_bundles_version():
    client = FakeTriton(set())
    await PinnedTriton(client, {"gnn_ranker": "3"}).infer("gnn_ranker", {}, ["score"])
    assert client.calls == [("gnn_ranker", "3")]


async def test_the_service_switches_only_once_triton_serves_the_new_versions_and_readiness_follows(tmp_path):
    one = _bundle(tmp_path, 1)
    two = _bundle(tmp_path, 2, one.id)
    client = FakeTriton({("gnn_ranker", "1")})
    switch = BundleSwitch(
        tmp_path,
        client,
        ("gnn_ranker",),
        lambda state, pinned: (state.bundle.id, pinned.versions["gnn_ranker"]),
        interval_s=0.01,
        load=_load,
    )
    assert switch.current() == (one.id, "1")
    health = FakeHealth()
    task = asyncio.create_task(switch.run(health))
    try:
        set_current(tmp_path, two.id)
        await _until(lambda: health.status.get(bundle_health_name(one.id)) is not None)
        await asyncio.sleep(0.1)  # several watch cycles
        assert switch.bundle_id == one.id and switch.current() == (one.id, "1")  # Triton lacks version 2 yet
        assert await switch.ready()
        client.ready.add(("gnn_ranker", "2"))
        await _until(lambda: health.status.get(bundle_health_name(one.id)) == NOT_SERVING)
        assert switch.current() == (two.id, "2")
        assert health.status[bundle_health_name(two.id)] == SERVING
        assert health.status[bundle_health_name(one.id)] == NOT_SERVING
        client.ready.clear()  # Triton lost the bundle's version: not ready, never mismatched side files
        assert not await switch.ready()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_bundle_that_fails_to_load_leaves_the_service_on_the_old_one(tmp_path):
    one = _bundle(tmp_path, 1)
    two = _bundle(tmp_path, 2, one.id)
    client = FakeTriton({("gnn_ranker", "1"), ("gnn_ranker", "2")})

    attempts = []

    def load(artifacts_dir, bundle, previous=None):
        if bundle.id == two.id:
            attempts.append(bundle.id)
            raise ValueError("corrupt fusion.json")
        return _load(artifacts_dir, bundle, previous)

    switch = BundleSwitch(
        tmp_path, client, ("gnn_ranker",), lambda state, pinned: state.bundle.id, interval_s=0.01, load=load
    )
    health = FakeHealth()
    set_current(tmp_path, two.id)
    task = asyncio.create_task(switch.run(health))
    try:
        await _until(lambda: health.status.get(bundle_health_name(one.id)) == SERVING)
        await asyncio.sleep(0.1)  # several watch cycles
        assert switch.bundle_id == one.id and not task.done()
        assert attempts == [two.id]  # tried once, not every second
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_service_that_answers_without_triton_stays_ready_only_while_triton_is_down(tmp_path):
    one = _bundle(tmp_path, 1)
    client = FakeTriton({("text_encoder", "1")})
    switch = BundleSwitch(
        tmp_path, client, ("text_encoder",), lambda state, pinned: state.bundle.id, interval_s=0.01, load=_load
    )
    assert one.id == switch.bundle_id and await switch.ready_unless_triton_down()
    client.ready.clear()  # Triton up, but serving other versions: not ready (never mix bundles)
    assert not await switch.ready_unless_triton_down()
    client.up = False  # Triton down: the service still answers (lexical-only), so it stays ready
    assert await switch.ready_unless_triton_down()
