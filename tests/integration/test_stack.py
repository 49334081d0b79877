"""Foundation: the four services and Triton start, answer health checks and expose reflection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.stack import SERVICES

GRPCURL = Path(sys.executable).parent / "grpcurl"

EXPECTED_SERVICE = {
    "gateway": "shop.gateway.v1.GatewayService",
    "retrieval": "shop.retrieval.v1.RetrievalService",
    "ranking": "shop.ranking.v1.RankingService",
    "explanation": "shop.explanation.v1.ExplanationService",
}


def test_every_service_is_serving(stack):
    for name in SERVICES:
        with grpc.insecure_channel(stack.addresses[name]) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for service in ("", EXPECTED_SERVICE[name]):
                status = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
                assert status == health_pb2.HealthCheckResponse.SERVING, (name, service)


def test_grpcurl_lists_services_through_reflection(stack):
    for name in SERVICES:
        out = subprocess.run(
            [str(GRPCURL), "-plaintext", stack.addresses[name], "list"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
        assert EXPECTED_SERVICE[name] in out and "grpc.health.v1.Health" in out, out


def test_grpcurl_calls_search_with_json(stack):
    request = json.dumps({"query": "lantern", "page_size": 3})
    out = subprocess.run(
        [
            str(GRPCURL),
            "-plaintext",
            "-d",
            request,
            stack.addresses["gateway"],
            "shop.gateway.v1.GatewayService/Search",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    body = json.loads(out)
    assert len(body["results"]) == 3
    assert all("LANTERN" in r["product"]["title"] for r in body["results"][:1])


def test_triton_serves_every_model(stack):
    import tritonclient.grpc as tc

    from libs.rankers import specs

    client = tc.InferenceServerClient(stack.triton.grpc_url)
    try:
        for model in specs():
            assert client.is_model_ready(model), model
    finally:
        client.close()
