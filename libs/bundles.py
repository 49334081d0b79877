"""Model bundles: the unit of deployment (read side, used by the services and the rollout tool).

A bundle is Triton version N of every served model plus the side files the services read with them, stamped with
one id. Layout under `$SHOP_ARTIFACTS_DIR/bundles/`:

    bundles/<id>/manifest.json      id, number N, parent, data cut-off, event count, validation metrics, files
    bundles/<id>/item_embeddings.npy, fusion.json, checkpoints/<ranker>.pt, train_report.json
    bundles/CURRENT                 the id the services serve (replaced atomically: os.replace)

The model weights live in the Triton repository as `<model>/<N>/model.onnx` (Triton wants them there); the
manifest's `models` maps each model to N, so a service can check that Triton serves exactly its bundle.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
BUNDLE_MODEL = "bundle"  # the ModelVersion name that carries the bundle id in responses
ID_RE = re.compile(r"b(\d{4,})-\d{8}T\d{6}Z")


class BundleError(RuntimeError):
    """No current bundle, or one whose files are incomplete."""


@dataclass(frozen=True)
class Bundle:
    id: str
    path: Path
    manifest: dict

    @property
    def number(self) -> int:
        return int(self.manifest["number"])

    @property
    def versions(self) -> dict[str, str]:
        """Triton model name -> the version of it this bundle was exported as."""
        return {name: str(v) for name, v in self.manifest["models"].items()}

    @property
    def parent(self) -> str | None:
        return self.manifest.get("parent")


def bundles_dir(artifacts_dir: Path) -> Path:
    return Path(artifacts_dir) / "bundles"


def bundle_id(number: int, created: str) -> str:
    """`b<NNNN>-<UTC time>`: sorts by number, and says when it was built."""
    return f"b{number:04d}-{created}"


def current_id(artifacts_dir: Path) -> str | None:
    try:
        return (bundles_dir(artifacts_dir) / CURRENT).read_text().strip() or None
    except FileNotFoundError:
        return None


def load_bundle(artifacts_dir: Path, bid: str | None = None) -> Bundle:
    """The bundle `bid` (default: the current one), after checking every file its manifest lists is there."""
    bid = bid or current_id(artifacts_dir)
    if bid is None:
        raise BundleError(f"no current bundle in {bundles_dir(artifacts_dir)}; run `make models` or `make retrain`")
    path = bundles_dir(artifacts_dir) / bid
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise BundleError(f"bundle {bid}: no {MANIFEST} in {path}") from None
    missing = [f for f in manifest.get("files", {}) if not (path / f).is_file()]
    if missing or manifest.get("id") != bid:
        raise BundleError(f"bundle {bid} is incomplete (missing {missing}) or mislabelled")
    return Bundle(bid, path, manifest)


def list_bundles(artifacts_dir: Path) -> list[Bundle]:
    """Every complete bundle, oldest (lowest number) first."""
    root = bundles_dir(artifacts_dir)
    ids = sorted(p.name for p in root.iterdir() if ID_RE.fullmatch(p.name)) if root.is_dir() else []
    out = []
    for bid in ids:
        try:
            out.append(load_bundle(artifacts_dir, bid))
        except BundleError:
            continue  # a bundle being written (or a failed write) is not a bundle
    return out


def set_current(artifacts_dir: Path, bid: str) -> None:
    """Point CURRENT at `bid` atomically: readers see the old id or the new one, never a torn file."""
    load_bundle(artifacts_dir, bid)  # refuse to point at an incomplete bundle
    root = bundles_dir(artifacts_dir)
    tmp = root / f".{CURRENT}.{os.getpid()}"
    tmp.write_text(bid + "\n")
    os.replace(tmp, root / CURRENT)
