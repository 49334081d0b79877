"""`make rollout` / `make rollback`: move Triton and the services from the current bundle to another, no downtime.

    python -m tools.rollout                 # to the newest bundle
    python -m tools.rollout --to <bundle id>
    python -m tools.rollout --rollback      # to the current bundle's parent

Protocol (libs/bundles.py, libs/bundle_switch.py):
1. Triton loads the target's versions next to the current ones (explicit model control) and reports them READY.
2. CURRENT is pointed at the target (os.replace). Each service sees it, loads the target's side files, checks that
   Triton serves the target's versions, and swaps its state in one assignment; its health name `bundle/<id>` turns
   SERVING. Requests already running finish on the old bundle, whose versions are still loaded.
3. Once every service named by --services reports the target, Triton unloads the old versions.
If a service does not switch in time, CURRENT goes back and Triton unloads the target: nothing changed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from libs.bundle_switch import bundle_health_name
from libs.bundles import Bundle, BundleError, list_bundles, load_bundle, set_current
from libs.readiness import is_serving
from libs.config import REPOSITORY, Addresses, ServiceSettings, artifacts_dir
from libs.triton.repository import load_versions, served_versions
from tools.stack import RUNNING


def pick_target(current: Bundle, bundles: Sequence[Bundle], to: str | None, rollback: bool) -> str:
    if to:
        return to
    if rollback:
        if not current.parent:
            raise BundleError(f"bundle {current.id} has no parent to roll back to")
        return current.parent
    newest = max(bundles, key=lambda b: b.number)
    if newest.id == current.id:
        raise BundleError(f"bundle {current.id} is already the newest; run `make retrain` first")
    return newest.id


def wait_switched(services: Sequence[str], bundle_id: str, timeout_s: float) -> list[str]:
    """The services that still do not serve `bundle_id` after `timeout_s` (empty = all switched)."""
    deadline = time.monotonic() + timeout_s
    pending = list(services)
    while pending and time.monotonic() < deadline:
        pending = [a for a in pending if not is_serving(a, bundle_health_name(bundle_id))]
        if pending:
            time.sleep(0.2)
    return pending


def rollout(
    triton_url: str,
    services: Sequence[str],
    to: str | None = None,
    rollback: bool = False,
    config_name: str = "cpu",
    timeout_s: float = 120.0,
    root: Path | None = None,
    repository: Path = REPOSITORY,
    poll: bool = False,
    settle_s: float = 0.0,
    log=print,
) -> str:
    """Serve bundle `to` (default: the newest; `rollback`: the parent); returns its id.

    `poll`: Triton polls `repository` (Kubernetes), so versions are pinned in its config files. `settle_s`: extra
    wait before the old versions go, for replicas `services` cannot name one by one (they poll CURRENT each second).
    """
    root = root or artifacts_dir()
    current = load_bundle(root)
    target = load_bundle(root, pick_target(current, list_bundles(root), to, rollback))
    if target.id == current.id:
        log(f"already serving {target.id}")
        return target.id
    both = {m: {current.versions.get(m, v), v} for m, v in target.versions.items()}
    run = target.manifest.get("run") or "-"  # its training run in TensorBoard (runs/<run>)
    log(f"1/3 Triton loads {target.id} (training run {run}) next to {current.id}: {target.versions}")
    load_versions(triton_url, both, repository, config_name, timeout_s, poll)
    log(f"2/3 CURRENT -> {target.id}; waiting for {len(services)} services to switch")
    set_current(root, target.id)
    pending = wait_switched(services, target.id, timeout_s)
    if pending:
        set_current(root, current.id)
        wait_switched(services, current.id, timeout_s)
        load_versions(
            triton_url, {m: [v] for m, v in current.versions.items()}, repository, config_name, timeout_s, poll
        )
        raise RuntimeError(f"{pending} did not switch to {target.id} in {timeout_s:.0f}s; stayed on {current.id}")
    time.sleep(settle_s)
    log(f"3/3 Triton unloads {current.id}'s versions")
    load_versions(triton_url, {m: [v] for m, v in target.versions.items()}, repository, config_name, timeout_s, poll)
    log(f"serving {target.id}; Triton: {served_versions(triton_url)}")
    return target.id


def running_stack() -> dict[str, str]:
    """Addresses of the stack `make run` serves (tools.stack writes them), or {} when none runs."""
    try:
        return json.loads(RUNNING.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def main(argv: Sequence[str] | None = None) -> int:
    settings, addrs = ServiceSettings(), Addresses()
    stack = running_stack()  # `make run` picks free ports for Triton and the inner services
    if stack and "url" not in settings.triton.model_fields_set:
        settings.triton.url = stack["triton"]
        addrs = Addresses(**{n: stack[n] for n in ("retrieval", "ranking", "explanation")})
    parser = argparse.ArgumentParser(prog="python -m tools.rollout", description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--to", help="bundle id (default: the newest bundle)")
    target.add_argument("--rollback", action="store_true", help="to the current bundle's parent")
    parser.add_argument("--triton", default=settings.triton.url, help="Triton gRPC (SHOP_TRITON_URL)")
    parser.add_argument(
        "--services",
        default=",".join([addrs.retrieval, addrs.ranking, addrs.explanation]),
        help="inner services that must report the new bundle before the old one is unloaded",
    )
    parser.add_argument(
        "--config-name",
        default=settings.triton.config_name,
        help="the config Triton reads: configs/<name>.pbtxt; '' = config.pbtxt (GPU)",
    )
    parser.add_argument("--timeout-s", type=float, default=120.0)
    parser.add_argument("--repository", type=Path, default=REPOSITORY, help="Triton model repository")
    parser.add_argument(
        "--poll",
        action="store_true",
        help="Triton polls the repository (--model-control-mode=poll): pin versions in its configs",
    )
    parser.add_argument(
        "--settle-s",
        type=float,
        default=0.0,
        help="wait this long after the services switched before unloading the old versions",
    )
    args = parser.parse_args(argv)
    try:
        rollout(
            args.triton,
            [a for a in args.services.split(",") if a],
            args.to,
            args.rollback,
            args.config_name,
            args.timeout_s,
            repository=args.repository,
            poll=args.poll,
            settle_s=args.settle_s,
        )
    except (BundleError, RuntimeError, TimeoutError) as exc:
        print(f"rollout failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
