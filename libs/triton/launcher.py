"""Start and stop a real NVIDIA Triton Inference Server on loopback.

On GPU-less machines the server binary comes from the PyPI package nvidia-pytriton, which ships
tritonserver 2.51 with the Python backend. The Python backend needs its stub next to
libtriton_python.so, so we assemble a backend directory of our own under build/ (see
docs/architecture.md, "Running Triton without a GPU").
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import tritonclient.grpc as grpcclient

from libs.config import REPO_ROOT, REPOSITORY, TritonSettings

log = logging.getLogger(__name__)

DEFAULT_MODEL_REPOSITORY = REPOSITORY


class TritonNotFoundError(RuntimeError):
    """The tritonserver binary (nvidia-pytriton) is not installed."""


def _pytriton_dir() -> Path:
    # Located, not imported: nvidia-pytriton is installed --no-deps and its Python API needs gevent; we only
    # want the server binary and the Python backend it ships.
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise TritonNotFoundError("nvidia-pytriton is not installed; run `make venv`")
    return Path(spec.submodule_search_locations[0]) / "tritonserver"


def prepare_backend_dir(dest: Path) -> Path:
    """Backend directory with the Python backend and the stub for this interpreter."""
    src = _pytriton_dir()
    py_dir = dest / "python"
    py_dir.mkdir(parents=True, exist_ok=True)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = src / "python_backend_stubs" / version / "triton_python_backend_stub"
    for f in [*(src / "backends" / "python").glob("*.so"), *(src / "backends" / "python").glob("*.py"), stub]:
        target = py_dir / f.name
        if not target.exists() or target.stat().st_size != f.stat().st_size:
            shutil.copy2(f, target)
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TritonServer:
    """A tritonserver child process bound to 127.0.0.1.

    `config_name` selects `<model>/configs/<name>.pbtxt` (e.g. "cpu"); empty = config.pbtxt.
    Model control is explicit: once up it loads `versions` (model -> version; default: the current bundle's,
    libs/bundles.py), and `tools.rollout` moves it between bundles (libs/triton/repository.py).
    """

    model_repository: Path = DEFAULT_MODEL_REPOSITORY
    grpc_port: int = 0
    http_port: int = 0
    metrics_port: int = 0
    config_name: str = "cpu"
    exit_timeout_s: int = 5
    log_path: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    cache_bytes: int = field(default_factory=lambda: TritonSettings().cache_bytes)
    versions: dict[str, str] | None = None
    process: subprocess.Popen | None = None
    # time.monotonic() of the last launch, of the server answering ready after it, of the bundle loaded after it
    launched_at: float | None = None
    ready_at: float | None = None
    loaded_at: float | None = None

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def command(self, backend_dir: Path) -> list[str]:
        binary = _pytriton_dir() / "bin" / "tritonserver"
        args = [
            str(binary),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={backend_dir}",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={self.grpc_port}",
            "--http-address=127.0.0.1",
            f"--http-port={self.http_port}",
            "--allow-metrics=true",
            f"--metrics-port={self.metrics_port}",
            f"--exit-timeout-secs={self.exit_timeout_s}",
            "--strict-readiness=true",
            "--model-control-mode=explicit",
            # Every config in the repository is complete (training/export/triton_configs.py). Auto-completion makes
            # the Python backend start one more stub process per model before its instances: loading the bundle
            # took 3.8-7.3 s with it and 1.2-1.9 s without (2 cores, busy).
            "--disable-auto-complete-config",
            "--log-verbose=0",
            # The response cache the text encoder's config enables (training/export/triton_configs.py).
            f"--cache-directory={_pytriton_dir() / 'caches'}",
            f"--cache-config=local,size={self.cache_bytes}",
        ]
        if self.config_name:
            args.append(f"--model-config-name={self.config_name}")
        return args + self.extra_args

    def start(self, timeout_s: float = 180.0) -> "TritonServer":
        self.launch()
        try:
            self.wait_ready(timeout_s)
            self.load_bundle(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def load_when_ready(self, timeout_s: float = 180.0) -> None:
        """After a relaunch (supervisor): wait for the server, then load the served bundle's versions, since
        explicit model control starts with no model loaded. Logs instead of raising: it runs in a thread."""
        try:
            self.wait_ready(timeout_s)
            self.load_bundle(timeout_s)
            log.warning("tritonserver relaunched and serving the current bundle")
        except Exception:
            log.exception("tritonserver relaunched but could not load the current bundle")

    def launch(self) -> subprocess.Popen:
        """Start the process without waiting for readiness (a supervisor restarting it keeps the same ports)."""
        self.grpc_port = self.grpc_port or free_port()
        self.http_port = self.http_port or free_port()
        self.metrics_port = self.metrics_port or free_port()
        backend_dir = prepare_backend_dir(REPO_ROOT / "build" / "triton_backends")
        env = dict(os.environ)
        libs = str(_pytriton_dir().parent.parent / "nvidia_pytriton.libs")
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in [libs, env.get("LD_LIBRARY_PATH", "")] if p)
        # Python-backend models run in this virtualenv; keep ORT/BLAS from oversubscribing 2 cores.
        env.setdefault("OMP_NUM_THREADS", "1")
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
        log.info("starting tritonserver grpc=%s repository=%s", self.grpc_url, self.model_repository)
        self.process = subprocess.Popen(
            self.command(backend_dir), env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.launched_at, self.ready_at, self.loaded_at = time.monotonic(), None, None
        return self.process

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        # Polled before the server listens: gRPC's default reconnect backoff (1 s, growing) would see it late.
        client = grpcclient.InferenceServerClient(
            self.grpc_url,
            channel_args=[
                ("grpc.initial_reconnect_backoff_ms", 50),
                ("grpc.max_reconnect_backoff_ms", 100),
                ("grpc.min_reconnect_backoff_ms", 50),
            ],
        )
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"tritonserver exited with code {self.process.returncode}; see {self.log_path}")
                try:
                    if client.is_server_ready():
                        self.ready_at = time.monotonic()
                        return
                except Exception:  # noqa: BLE001 - not listening yet
                    pass
                time.sleep(0.05)
        finally:
            client.close()
        raise TimeoutError(f"tritonserver not ready after {timeout_s:.0f}s; see {self.log_path}")

    def load_bundle(self, timeout_s: float) -> None:
        from libs.bundles import load_bundle
        from libs.config import artifacts_dir
        from libs.triton.repository import load_versions

        versions = self.versions or load_bundle(artifacts_dir()).versions
        load_versions(
            self.grpc_url, {m: [v] for m, v in versions.items()}, self.model_repository, self.config_name, timeout_s
        )
        self.loaded_at = time.monotonic()

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL if it overstays its exit timeout; then SIGKILL whatever is
        left in the group (Python-backend stubs outlive a server that was killed rather than stopped)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=self.exit_timeout_s + 10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
