"""The whole stack on loopback as child processes (Triton + retrieval, ranking, explanation, gateway): start,
supervise, stop.

A supervised process that exits is restarted with exponential backoff. Each child runs in its own process group and
is stopped, or cleaned up after a crash, as a group: Triton's Python-backend stub processes go with it. `make run`
(tools.stack), the integration tests, `make load`, `make bench`, `make chaos` and `make loop-eval` use `Stack`.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from libs.config import REPO_ROOT
from libs.readiness import is_serving
from libs.triton.launcher import TritonServer, free_port

log = logging.getLogger("stack")

SERVICES = ("retrieval", "ranking", "explanation", "gateway")


def wait_healthy(addr: str, timeout_s: float, proc: subprocess.Popen | None = None, service: str = "") -> None:
    """Until `addr` reports SERVING for `service` ("" = readiness; libs.readiness.LIVENESS = the process is up)."""
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(addr) as channel:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process for {addr} exited with code {proc.returncode}")
            if is_serving(channel, service):
                return
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


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL what is left of the process group of `proc` (started with start_new_session, so the group is ours
    alone): the children a crashed process leaves behind, such as Triton's backend stubs after a kill -9."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclass
class Backoff:
    """Restart delays 0, 1, 2, 4 ... 30 s; a process that stayed up `stable_s` starts again from 0 s. The first
    restart is immediate (as Kubernetes does): every second a crashed Triton stays down is a second of degraded
    answers; only a crash loop is slowed down."""

    initial_s: float = 1.0
    maximum_s: float = 30.0
    stable_s: float = 60.0
    failures: int = 0

    def next_delay(self, uptime_s: float) -> float:
        self.failures = 1 if uptime_s >= self.stable_s else self.failures + 1
        return 0.0 if self.failures == 1 else min(self.initial_s * 2 ** (self.failures - 2), self.maximum_s)


@dataclass
class Stack:
    """Triton and the four services as child processes bound to 127.0.0.1."""

    addresses: dict[str, str] = field(default_factory=dict)
    log_dir: Path = REPO_ROOT / "build" / "logs"
    env: dict[str, str] = field(default_factory=dict)
    triton: TritonServer | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    # Supervision state: when each child started, its backoff, and restarts scheduled (name -> monotonic time).
    started_at: dict[str, float] = field(default_factory=dict)
    backoff: dict[str, Backoff] = field(default_factory=dict)
    pending: dict[str, float] = field(default_factory=dict)
    restarts: list[tuple[str, int | None, float]] = field(default_factory=list)  # (name, exit code, delay)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def service_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({f"SHOP_{name.upper()}_ADDR": addr for name, addr in self.addresses.items()})
        env["SHOP_TRITON_URL"] = self.triton.grpc_url if self.triton else env.get("SHOP_TRITON_URL", "")
        # One attribution-token key per stack: tokens stay valid across supervised restarts of the gateway.
        self.env.setdefault("SHOP_TOKEN_KEY", env.get("SHOP_TOKEN_KEY") or secrets.token_hex(32))
        env.update(self.env)
        return env

    def start(self, with_triton: bool = True, timeout_s: float = 240.0) -> "Stack":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in SERVICES:
            self.addresses.setdefault(name, f"127.0.0.1:{free_port()}")
        try:
            if with_triton:
                self.triton = TritonServer(log_path=self.log_dir / "triton.log").start(timeout_s)
                self.started_at["triton"] = time.monotonic()
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
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            cwd=REPO_ROOT,
            env=env or self.service_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = proc
        self.started_at[name] = time.monotonic()
        return proc

    def stop_service(self, name: str, timeout_s: float = 15.0) -> None:
        with self.lock:
            self.pending.pop(name, None)
            proc = self.processes.pop(name, None)
        if proc is not None:
            stop_process(proc, timeout_s)
            kill_group(proc)

    def stop(self) -> None:
        self.stopping.set()
        # Gateway first, so no new work reaches the inner services while they drain.
        for name in reversed(SERVICES):
            self.stop_service(name)
        if self.triton is not None:
            self.triton.stop()

    def _children(self) -> dict[str, subprocess.Popen]:
        children = dict(self.processes)
        if self.triton is not None and self.triton.process is not None:
            children["triton"] = self.triton.process
        return children

    def supervise_once(self) -> list[str]:
        """Schedule a restart (with backoff) of every child that exited; start those whose delay ran out.

        Returns the names started now. Restarted Triton keeps its ports, so the services' channels find it again.
        """
        started = []
        with self.lock:
            if self.stopping.is_set():
                return started
            now = time.monotonic()
            for name, proc in self._children().items():
                if name in self.pending or proc.poll() is None:
                    continue
                kill_group(proc)  # what the crash left behind (Triton's backend stubs)
                delay = self.backoff.setdefault(name, Backoff()).next_delay(now - self.started_at.get(name, now))
                self.pending[name] = now + delay
                self.restarts.append((name, proc.returncode, delay))
                log.warning("%s exited with code %s; restarting in %.0f s", name, proc.returncode, delay)
            for name, at in list(self.pending.items()):
                if at > now:
                    continue
                del self.pending[name]
                if name == "triton":
                    self.triton.launch()
                    threading.Thread(target=self.triton.load_when_ready, daemon=True, name="triton-load").start()
                else:
                    self.start_service(name)
                self.started_at[name] = time.monotonic()
                started.append(name)
                log.warning("%s restarted (pid %d)", name, self._children()[name].pid)
        return started

    def supervise(self, until: threading.Event, interval_s: float = 0.5) -> None:
        """Run `supervise_once` until `until` is set (make run: the main thread; make chaos: a thread)."""
        while not until.wait(interval_s):
            self.supervise_once()

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
