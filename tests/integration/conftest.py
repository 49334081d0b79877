"""Integration fixtures: the real Triton and the real services on 127.0.0.1, always stopped by pid."""

from __future__ import annotations

import os
from collections.abc import Iterator

import grpc
import pytest
from shop.gateway.v1 import gateway_service_pb2_grpc

from libs.stack import Stack


def _running_stack(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str] | None = None) -> Iterator[Stack]:
    s = Stack(
        env={"SHOP_EVENTS_DB": str(tmp_path_factory.mktemp("events") / "events.sqlite3"), **(env or {})},
        log_dir=tmp_path_factory.mktemp("logs"),
    )
    s.start()
    try:
        yield s
    finally:
        s.stop()
    for name, proc in s.processes.items():  # stop() popped them all; anything left is a leak
        pytest.fail(f"{name} (pid {proc.pid}) left running")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack, shared by the tests that only read (Search, Recommend, health)."""
    yield from _running_stack(tmp_path_factory)


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A private stack for tests that break things (stop Triton or a service)."""
    yield from _running_stack(tmp_path_factory)


@pytest.fixture
def gateway(stack: Stack) -> Iterator[gateway_service_pb2_grpc.GatewayServiceStub]:
    with grpc.insecure_channel(stack.addresses["gateway"]) as channel:
        yield gateway_service_pb2_grpc.GatewayServiceStub(channel)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
