"""Which model versions Triton serves: each model's config with `version_policy: specific {versions}`.

Triton then holds exactly the versions a rollout needs: the serving bundle's, both bundles' while services switch,
then only the new one's; it keeps serving the versions it already has while it loads the others.
- explicit model control (`--model-control-mode=explicit`, `make run`): the config goes with a load request;
- polling (`--model-control-mode=poll`, Kubernetes: every Triton replica reads one shared volume): the config file
  in the repository is replaced atomically, and each replica reloads the model when it polls.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable, Mapping
from pathlib import Path

import tritonclient.grpc as grpcclient
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from libs.config import REPOSITORY


def model_config(repository: Path, model: str, config_name: str = "") -> model_config_pb2.ModelConfig:
    """The config Triton would read: `<model>/configs/<config_name>.pbtxt` when named, else config.pbtxt."""
    return text_format.Parse(config_path(repository, model, config_name).read_text(), model_config_pb2.ModelConfig())


def config_path(repository: Path, model: str, config_name: str = "") -> Path:
    folder = Path(repository) / model
    return folder / "configs" / f"{config_name}.pbtxt" if config_name else folder / "config.pbtxt"


def pinned_config(
    repository: Path, model: str, versions: Iterable[str | int], config_name: str = ""
) -> model_config_pb2.ModelConfig:
    config = model_config(repository, model, config_name)
    config.version_policy.specific.versions[:] = sorted({int(v) for v in versions})
    return config


def write_pinned_config(repository: Path, model: str, versions: Iterable[str | int], config_name: str = "") -> Path:
    """Replace the model's config file with itself pinned to `versions` (atomically: a replica polling now reads the
    old config or the new one, never half of it)."""
    path = config_path(repository, model, config_name)
    text = text_format.MessageToString(pinned_config(repository, model, versions, config_name))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def load_versions(
    url: str,
    versions: Mapping[str, Iterable[str | int]],
    repository: Path = REPOSITORY,
    config_name: str = "cpu",
    timeout_s: float = 300.0,
    poll: bool = False,
) -> None:
    """Make Triton serve exactly `versions[model]` of each model; returns once every one of them is READY.
    `poll`: Triton polls the repository, so write the configs there instead of sending load requests."""
    if poll:
        for model, wanted in versions.items():
            write_pinned_config(repository, model, wanted, config_name)
    else:
        # All at once: Triton loads models on a thread pool, so after a restart the models (each starting its
        # backend processes and warming up) come back in the time of the slowest, not of all together.
        with ThreadPoolExecutor(max(len(versions), 1)) as pool:
            list(pool.map(lambda item: _load(url, *item, repository, config_name, timeout_s), versions.items()))
    client = grpcclient.InferenceServerClient(url)
    try:
        deadline = time.monotonic() + timeout_s
        pending = {(m, str(v)) for m, vs in versions.items() for v in vs}
        while pending:
            pending = {(m, v) for m, v in pending if not client.is_model_ready(m, v)}
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"Triton did not make {sorted(pending)} ready in {timeout_s:.0f}s")
            if pending:
                time.sleep(0.2)
    finally:
        client.close()


def _load(
    url: str, model: str, wanted: Iterable[str | int], repository: Path, config_name: str, timeout_s: float
) -> None:
    client = grpcclient.InferenceServerClient(url)  # one per thread: a client is not shared between threads
    try:
        config = pinned_config(repository, model, wanted, config_name)
        client.load_model(model, config=json_format.MessageToJson(config), client_timeout=timeout_s)
    finally:
        client.close()


def served_versions(url: str) -> dict[str, list[str]]:
    """Model -> the versions Triton reports READY."""
    client = grpcclient.InferenceServerClient(url)
    try:
        index = client.get_model_repository_index(as_json=True).get("models", [])
    finally:
        client.close()
    out: dict[str, list[str]] = {}
    for m in index:
        if m.get("state") == "READY":
            out.setdefault(m["name"], []).append(m.get("version", ""))
    return {k: sorted(v, key=int) for k, v in out.items()}
