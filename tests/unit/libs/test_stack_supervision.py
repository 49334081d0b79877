"""libs.stack supervision with tiny stand-in processes (no services, no Triton)."""

import os
import signal
import subprocess
import sys
import time

from libs.stack import Backoff, Stack, kill_group


def _spawn(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead; only its parent (init here) has not reaped it yet.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_backoff_doubles_to_a_cap_and_resets_after_a_stable_run():
    b = Backoff(initial_s=1, maximum_s=8, stable_s=60)
    assert [b.next_delay(0) for _ in range(6)] == [0, 1, 2, 4, 8, 8]
    assert b.next_delay(120) == 0


def test_a_crashed_child_is_restarted_at_once_then_after_its_backoff_and_stop_ends_it(tmp_path, monkeypatch):
    stack = Stack(log_dir=tmp_path)
    stack.processes["retrieval"] = _spawn("raise SystemExit(3)")
    stack.processes["retrieval"].wait()
    started = []
    scripts = iter(["raise SystemExit(4)", "import time; time.sleep(60)"])

    def start_service(name, env=None):
        started.append(name)
        stack.processes[name] = _spawn(next(scripts))
        return stack.processes[name]

    monkeypatch.setattr(stack, "start_service", start_service)
    assert stack.supervise_once() == ["retrieval"]  # the first crash: restarted at once
    stack.processes["retrieval"].wait()  # ... and it crashes again at once
    assert stack.supervise_once() == []  # scheduled, not yet due
    assert stack.restarts == [("retrieval", 3, 0.0), ("retrieval", 4, 1.0)]
    stack.pending["retrieval"] = time.monotonic()
    assert stack.supervise_once() == ["retrieval"] and started == ["retrieval", "retrieval"]
    proc = stack.processes["retrieval"]
    stack.stop()
    assert proc.poll() is not None and stack.processes == {}
    assert stack.supervise_once() == []  # nothing comes back after stop


def test_kill_group_removes_what_a_killed_parent_left_behind():
    # The parent starts a grandchild in its own process group (as tritonserver starts its backend stubs) and is
    # then killed with SIGKILL, like Triton in the chaos run.
    parent = _spawn(
        "import subprocess, sys, time\n"
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(c.pid, flush=True); time.sleep(60)"
    )
    orphan = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    assert _alive(orphan)
    kill_group(parent)
    deadline = time.monotonic() + 5
    while _alive(orphan) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(orphan)
