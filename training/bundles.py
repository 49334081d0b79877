"""Writing model bundles (libs/bundles.py has the layout and the read side).

`python -m training.bundles adopt` makes bundle 1 from what `python -m training.train` wrote (artifacts/models and
Triton version 1) - training.train does this itself; the command is for artifacts trained before bundles existed.
`python -m training.bundles list` prints the bundles, the current one marked.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from libs.bundles import MANIFEST, Bundle, bundle_id, bundles_dir, current_id, list_bundles, load_bundle, set_current
from libs.catalog.prepare import sha256_of
from libs.config import REPOSITORY, artifacts_dir, models_dir
from libs.model_io import FUSION_FILE, ITEM_EMBEDDINGS_FILE
from libs.rankers import names as ranker_names, specs

MODEL_FILES = ("model.onnx", "model.py", "model.plan")  # the engine only where TensorRT built one


def repository_versions(repository: Path) -> list[int]:
    return sorted(
        {
            int(p.name)
            for name in specs()
            for p in (Path(repository) / name).glob("*")
            if p.is_dir() and p.name.isdigit()
        }
    )


def next_number(root: Path, repository: Path) -> int:
    """One past every bundle and every Triton version on disk, so a new bundle never reuses a version number."""
    used = [b.number for b in list_bundles(root)] + repository_versions(repository)
    return max(used, default=0) + 1


def link_model_version(repository: Path, name: str, src: int, dst: int) -> None:
    """Version `dst` of a model whose weights did not change (the text encoder): hard links, no copy."""
    src_dir, dst_dir = Path(repository) / name / str(src), Path(repository) / name / str(dst)
    dst_dir.mkdir(parents=True, exist_ok=True)
    for f in MODEL_FILES:
        (dst_dir / f).unlink(missing_ok=True)
        if not (src_dir / f).is_file():
            continue
        try:
            os.link(src_dir / f, dst_dir / f)
        except OSError:  # another file system: copy
            shutil.copy2(src_dir / f, dst_dir / f)


def write_bundle(
    root: Path, number: int, files: Mapping[str, Path], info: Mapping, parent: str | None, make_current: bool = True
) -> Bundle:
    """Copy `files` (name in the bundle -> source) into a new bundle dir with its manifest, in a staging dir
    renamed into place (a reader never sees half a bundle), then point CURRENT at it if asked."""
    created = dt.datetime.now(dt.timezone.utc)
    bid = bundle_id(number, created.strftime("%Y%m%dT%H%M%SZ"))
    root_dir = bundles_dir(root)
    staging = root_dir / f".staging-{bid}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for rel, src in files.items():
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, staging / rel)
    manifest = {
        "id": bid,
        "number": number,
        "parent": parent,
        "created_at": created.isoformat(timespec="seconds"),
        "models": {name: number for name in specs()},
        **info,
        "files": {rel: sha256_of(staging / rel) for rel in files},
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    os.rename(staging, root_dir / bid)
    if make_current:
        set_current(root, bid)
    return load_bundle(root, bid)


def side_files(models_out: Path, checkpoints: Mapping[str, Path]) -> dict[str, Path]:
    """What services and the next retrain read, by name in the bundle."""
    files = {ITEM_EMBEDDINGS_FILE: models_out / ITEM_EMBEDDINGS_FILE, FUSION_FILE: models_out / FUSION_FILE}
    files |= {f"checkpoints/{name}.pt": path for name, path in checkpoints.items()}
    report = models_out / "train_report.json"
    if report.is_file():
        files["train_report.json"] = report
    return files


def adopt(root: Path, models_out: Path, info: Mapping | None = None) -> Bundle:
    """Bundle 1 = Triton version 1 + artifacts/models (what training.train exports). Replaces an older bundle 1."""
    from training.train.checkpoints import latest_checkpoint
    import pandas as pd

    checkpoints = {}
    for name in ranker_names():
        path = latest_checkpoint(models_out, name, pd.Timestamp.max)
        if path is None:
            raise FileNotFoundError(f"no checkpoint of {name} in {models_out}/checkpoints; run `make models`")
        checkpoints[name] = path
    for old in list_bundles(root):
        if old.number == 1:
            shutil.rmtree(old.path)
    fusion = json.loads((models_out / FUSION_FILE).read_text())
    # The rankers saw purchases before their checkpoint's cut-off (its file name), and no recorded events.
    cutoff = min(str(pd.Timestamp(p.stem[len(n) + 1 :])) for n, p in checkpoints.items())
    info = (
        {"data_cutoff": cutoff, "events": {"count": 0}}
        | dict(info or {})
        | {
            "origin": "python -m training.train",
            "validation": {
                "ndcg20_fused": fusion.get("validation_ndcg20"),
                "ndcg20_per_model": fusion.get("validation_ndcg20_per_model"),
            },
        }
    )
    return write_bundle(root, 1, side_files(models_out, checkpoints), info, parent=None)


def rewind(root: Path, models_out: Path, not_after) -> Bundle:
    """Replace the current bundle of `root` (a private copy, see private_copy) by one whose rankers are the newest
    checkpoints trained at or before `not_after` (training.train keeps the validation cut-off's next to the refitted
    ones), and make it current. For make loop-eval, whose frozen bundle must not have seen the weeks it replays. Its
    Triton versions stay the current bundle's: the evaluation and the next retrain read the checkpoints, and during
    the replay the stack only records events."""
    from training.train.checkpoints import latest_checkpoint
    import pandas as pd

    current = load_bundle(root)
    files = {rel: current.path / rel for rel in current.manifest["files"]}
    cutoffs = []
    for name in ranker_names():
        path = latest_checkpoint(models_out, name, pd.Timestamp(not_after))
        if path is None:
            raise FileNotFoundError(f"no checkpoint of {name} trained before {not_after} in {models_out}/checkpoints")
        files[f"checkpoints/{name}.pt"] = path
        cutoffs.append(str(pd.Timestamp(path.stem[len(name) + 1 :])))
    kept = {
        k: v
        for k, v in current.manifest.items()
        if k not in ("id", "number", "parent", "created_at", "models", "files")
    }
    while bundle_id(current.number, dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")) == current.id:
        time.sleep(0.05)  # same number: the id differs by its second only
    bundle = write_bundle(
        root,
        current.number,
        files,
        kept | {"data_cutoff": min(cutoffs), "rewound_from": current.id},
        parent=current.parent,
    )
    shutil.rmtree(current.path)
    return bundle


def private_copy(src_root: Path, src_repository: Path, dest: Path) -> tuple[Path, Path]:
    """(artifacts dir, model repository) under `dest` that serve `src_root`'s current bundle: the prepared data,
    training caches and the model weights linked, the bundle copied, configs copied. Experiments (make loop-eval,
    the rollout test) retrain and roll out there without touching the real ones."""
    current = load_bundle(src_root)
    root, repository = Path(dest) / "artifacts", Path(dest) / "repo"
    root.mkdir(parents=True)
    os.symlink(Path(src_root).resolve() / "data", root / "data")
    os.symlink(Path(src_root).resolve() / "models", root / "models")  # caches keyed by dataset (query embeddings)
    shutil.copytree(current.path, bundles_dir(root) / current.id)
    set_current(root, current.id)
    for name, version in current.versions.items():
        (repository / name).mkdir(parents=True)
        shutil.copy2(Path(src_repository) / name / "config.pbtxt", repository / name / "config.pbtxt")
        shutil.copytree(Path(src_repository) / name / "configs", repository / name / "configs")
        os.symlink((Path(src_repository) / name / version).resolve(), repository / name / version)
    return root, repository


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.bundles", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["adopt", "list"])
    args = parser.parse_args(argv)
    root = artifacts_dir()
    if args.command == "adopt":
        missing = [
            str(REPOSITORY / n / "1" / "model.onnx")
            for n in specs()
            if not (REPOSITORY / n / "1" / "model.onnx").is_file()
        ]
        if missing:
            print(f"missing: {missing}; run `make models`", file=sys.stderr)
            return 1
        print(adopt(root, models_dir()).id)
        return 0
    current = current_id(root)
    for b in list_bundles(root):
        run = b.manifest.get("run") or "-"  # the TensorBoard run that trained it (runs/<run>; older bundles: none)
        events = b.manifest.get("events", {})
        print(f"{'*' if b.id == current else ' '} {b.id}  run={run}  parent={b.parent}  events={events}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
