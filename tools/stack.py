"""Start the whole stack on loopback (Triton + retrieval, ranking, explanation, gateway) and stop it.

`python -m tools.stack` is what `make run` runs: Ctrl-C (or SIGTERM) stops every process it started.
Integration tests, `make load` and `make bench` use `Stack` the same way.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.config import REPO_ROOT
from libs.triton.launcher import TritonServer, free_port

log = logging.getLogger("stack")

SERVICES = ("retrieval", "ranking", "explanation", "gateway")
RUNNING = REPO_ROOT / "build" / "stack.json"  # addresses of the stack `make run` serves, while it runs


def wait_healthy(addr: str, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process for {addr} exited with code {proc.returncode}")
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise TimeoutError(f"{addr} not healthy after {timeout_s:.0f}s")


def stop_process(proc: subprocess.Popen, timeout_s: float = 15.0) -> None:
    """SIGTERM this pid (only a process we started), SIGKILL if it overstays its grace."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Stack:
    """Triton and the four services as child processes bound to 127.0.0.1."""

    addresses: dict[str, str] = field(default_factory=dict)
    log_dir: Path = REPO_ROOT / "build" / "logs"
    env: dict[str, str] = field(default_factory=dict)
    triton: TritonServer | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def service_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({f"SHOP_{name.upper()}_ADDR": addr for name, addr in self.addresses.items()})
        env["SHOP_TRITON_URL"] = self.triton.grpc_url if self.triton else env.get("SHOP_TRITON_URL", "")
        env.update(self.env)
        return env

    def start(self, with_triton: bool = True, timeout_s: float = 240.0) -> "Stack":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in SERVICES:
            self.addresses.setdefault(name, f"127.0.0.1:{free_port()}")
        try:
            if with_triton:
                self.triton = TritonServer(log_path=self.log_dir / "triton.log").start(timeout_s)
            env = self.service_env()
            for name in SERVICES:
                self.start_service(name, env)
            for name in SERVICES:
                wait_healthy(self.addresses[name], timeout_s, self.processes[name])
        except BaseException:
            self.stop()
            raise
        return self

    def start_service(self, name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=REPO_ROOT,
                                env=env or self.service_env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.processes[name] = proc
        return proc

    def stop_service(self, name: str, timeout_s: float = 15.0) -> None:
        proc = self.processes.pop(name, None)
        if proc is not None:
            stop_process(proc, timeout_s)

    def stop(self) -> None:
        # Gateway first, so no new work reaches the inner services while they drain.
        for name in reversed(SERVICES):
            self.stop_service(name)
        if self.triton is not None:
            self.triton.stop()

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default=os.environ.get("SHOP_GATEWAY_ADDR", "127.0.0.1:50051"))
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = Stack(addresses={"gateway": args.gateway})
    print("starting Triton and services (logs in build/logs/) ...", flush=True)
    with stack:
        print(f"serving: gateway {stack.addresses['gateway']}, triton {stack.triton.grpc_url}; "
              f"inner: {', '.join(f'{n} {stack.addresses[n]}' for n in SERVICES[:-1])}", flush=True)
        print("Ctrl-C stops everything.", flush=True)
        # Where this stack listens, for `make rollout` / `make rollback` run from another shell.
        RUNNING.write_text(json.dumps({"triton": stack.triton.grpc_url, **stack.addresses}) + "\n")
        try:
            while not stop.wait(1.0):
                for name, proc in stack.processes.items():
                    if proc.poll() is not None:
                        print(f"{name} exited with code {proc.returncode}; stopping", file=sys.stderr)
                        return 1
        finally:
            RUNNING.unlink(missing_ok=True)
    print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
