"""Render each kustomize overlay with the project's kubectl and validate it offline.

    python -m deploy.k8s.validate [overlay ...]   # default: every folder of deploy/k8s/overlays; exit 1 on problems

Two layers: `kubernetes-validate --strict` (JSON schemas of the Kubernetes API shipped in the PyPI package: types,
required and unknown fields) and a few project rules a schema cannot express (probes, limits, autoscaling, GPU
placement, network isolation). Rendered manifests land in build/k8s/<overlay>.yaml for review or `kubectl apply -f`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from deploy.k8s.kubectl import install

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = Path(__file__).resolve().parent / "overlays"
OUT = ROOT / "build" / "k8s"
# Oldest API the manifests must satisfy (kubectl's own minor), and the newest schema the validator ships.
K8S_VERSIONS = ("1.35.0", "1.37.0")
SERVICES = ("gateway", "retrieval", "ranking", "explanation")
INNER = {"retrieval", "ranking", "explanation"}


def render(overlay: str, kubectl: Path | None = None) -> Path:
    kubectl = kubectl or install()
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"{overlay}.yaml"
    text = subprocess.run(
        [str(kubectl), "kustomize", str(OVERLAYS / overlay)], check=True, capture_output=True, text=True
    ).stdout
    out.write_text(text)
    return out


def schema_problems(path: Path) -> list[str]:
    """kubernetes-validate --strict on every document, for each version in K8S_VERSIONS."""
    args = [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "--no-warn"]
    for v in K8S_VERSIONS:
        args += ["-k", v]
    proc = subprocess.run([*args, str(path)], capture_output=True, text=True)
    if proc.returncode == 0:
        return []
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    return lines or [f"kubernetes-validate exited {proc.returncode}"]


def _containers(doc: dict) -> list[dict]:
    return doc["spec"]["template"]["spec"].get("containers", [])


def policy_problems(docs: list[dict], overlay: str) -> list[str]:
    """Rules of this project that schemas cannot check."""
    problems: list[str] = []
    by_kind: dict[str, dict[str, dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    deployments = by_kind.get("Deployment", {})
    for name, dep in deployments.items():
        pod = dep["spec"]["template"]["spec"]
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problems.append(f"Deployment/{name}: pod securityContext.runAsNonRoot is not true")
        for c in _containers(dep):
            where = f"Deployment/{name} container {c['name']}"
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in c:
                    problems.append(f"{where}: no {probe}")
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(res.get(part, {})):
                    problems.append(f"{where}: resources.{part} needs cpu and memory")
            ports = {p["containerPort"] for p in c.get("ports", [])}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                grpc_port = c.get(probe, {}).get("grpc", {}).get("port")
                if grpc_port is not None and grpc_port not in ports:
                    problems.append(f"{where}: {probe} probes gRPC port {grpc_port}, not a container port")
    for name in SERVICES:
        if name not in deployments:
            problems.append(f"Deployment/{name} missing")
            continue
        if not any(c.get("readinessProbe", {}).get("grpc") for c in _containers(deployments[name])):
            problems.append(f"Deployment/{name}: readiness must use the native gRPC probe (grpc.health.v1)")
        hpa = by_kind.get("HorizontalPodAutoscaler", {}).get(name)
        if hpa is None or hpa["apiVersion"] != "autoscaling/v2" or hpa["spec"]["scaleTargetRef"]["name"] != name:
            problems.append(f"Deployment/{name}: no autoscaling/v2 HPA targeting it")
        elif not any(m.get("resource", {}).get("name") == "cpu" for m in hpa["spec"].get("metrics", [])):
            problems.append(f"HorizontalPodAutoscaler/{name}: does not scale on cpu")
        if name not in by_kind.get("PodDisruptionBudget", {}):
            problems.append(f"Deployment/{name}: no PodDisruptionBudget")
    problems += _network_problems(by_kind.get("NetworkPolicy", {}))
    problems += _triton_problems(deployments.get("triton"), overlay)
    if "console" not in deployments or "console" not in by_kind.get("Service", {}):
        problems.append("console: no Deployment and Service")
    if overlay == "prod":
        problems += _prod_problems(deployments, by_kind.get("NetworkPolicy", {}))
        console_env = {
            e["name"]: e
            for c in _containers(deployments.get("console", {"spec": {"template": {"spec": {}}}}))
            for e in c.get("env", [])
        }
        if "secretKeyRef" not in console_env.get("SHOP_AUTH_TOKEN", {}).get("valueFrom", {}):
            problems.append("prod: console must ask for the bearer token (SHOP_AUTH_TOKEN from a Secret)")
    return problems


# Production security defaults (overlays/prod): settings every service must have, and where their values come from.
PROD_LITERALS = {
    "SHOP_TLS_CERT",
    "SHOP_TLS_KEY",
    "SHOP_TLS_CLIENT_CA",
    "SHOP_TLS_CA",
    "SHOP_TLS_CLIENT_CERT",
    "SHOP_TLS_CLIENT_KEY",
}
PROD_SECRETS = {"SHOP_AUTH_TOKEN", "SHOP_LOG_KEY"}
# The gateway's own: the attribution tokens' key, and the catalogue write token (without it writes are closed).
GATEWAY_SECRETS = {"SHOP_TOKEN_KEY", "SHOP_CATALOG_WRITE_TOKEN"}


def _prod_problems(deployments: dict[str, dict], policies: dict[str, dict]) -> list[str]:
    problems = []
    for name in SERVICES:
        env = {
            e["name"]: e
            for c in _containers(deployments.get(name, {"spec": {"template": {"spec": {}}}}))
            for e in c.get("env", [])
        }
        secrets = PROD_SECRETS | (GATEWAY_SECRETS if name == "gateway" else set())
        problems += [f"prod: {name} lacks {k}" for k in sorted(PROD_LITERALS - set(env))]
        problems += [
            f"prod: {name} must read {k} from a Secret (secretKeyRef), not a literal"
            for k in sorted(secrets)
            if "secretKeyRef" not in env.get(k, {}).get("valueFrom", {})
        ]
        if env.get("SHOP_OPEN_REFLECTION", {}).get("value") != "false":
            problems.append(f"prod: {name} serves reflection without the bearer token")
    deny = [
        p
        for p in policies.values()
        if p["spec"].get("podSelector") == {}
        and {"Ingress", "Egress"} <= set(p["spec"].get("policyTypes", []))
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    if not deny:
        problems.append("prod: no default-deny NetworkPolicy (every pod, Ingress and Egress, no rules)")
    return problems


def _network_problems(policies: dict[str, dict]) -> list[str]:
    """Every inner service must be selected by an ingress policy whose only peers are gateway pods."""
    covered: set[str] = set()
    for pol in policies.values():
        sel = pol["spec"]["podSelector"]
        names = {sel.get("matchLabels", {}).get("app.kubernetes.io/name")}
        for e in sel.get("matchExpressions", []):
            if e["key"] == "app.kubernetes.io/name" and e["operator"] == "In":
                names |= set(e["values"])
        peers = [p for rule in pol["spec"].get("ingress", []) for p in rule.get("from", [{}])]
        gateway_only = peers and all(
            p.get("podSelector", {}).get("matchLabels") == {"app.kubernetes.io/name": "gateway"}
            and "namespaceSelector" not in p
            and "ipBlock" not in p
            for p in peers
        )
        if gateway_only and "Ingress" in pol["spec"].get("policyTypes", []):
            covered |= names & INNER
    return [f"NetworkPolicy: {n} is reachable from pods other than the gateway" for n in sorted(INNER - covered)]


def _triton_problems(dep: dict | None, overlay: str) -> list[str]:
    if dep is None:
        return ["Deployment/triton missing"]
    c = _containers(dep)[0]
    gpu = c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
    volumes = {v["name"] for v in dep["spec"]["template"]["spec"].get("volumes", [])}
    problems = [] if "model-repository" in volumes else ["Deployment/triton: no model-repository volume"]
    if overlay == "gpu" and not gpu:
        problems.append("gpu overlay: Triton has no nvidia.com/gpu limit")
    if overlay == "cpu":
        if gpu:
            problems.append("cpu overlay: Triton still requests nvidia.com/gpu")
        if "--model-config-name=onnx" not in c.get("args", []):
            problems.append("cpu overlay: Triton does not select the onnx (ONNX Runtime backend) configs")
    return problems


def validate(path: Path, overlay: str) -> list[str]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return schema_problems(path) + policy_problems(docs, overlay)


def main(argv: list[str]) -> int:
    overlays = argv or sorted(p.name for p in OVERLAYS.iterdir() if (p / "kustomization.yaml").is_file())
    kubectl = install()
    failed = 0
    for overlay in overlays:
        path = render(overlay, kubectl)
        problems = validate(path, overlay)
        n = sum(1 for d in yaml.safe_load_all(path.read_text()) if d)
        status = "ok" if not problems else f"{len(problems)} problems"
        print(f"{overlay}: {n} resources rendered to {path.relative_to(ROOT)}, {status}")
        for p in problems:
            print(f"  {p}")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
