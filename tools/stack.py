"""`python -m tools.stack` is what `make run` runs: the whole stack on loopback (libs.stack.Stack), supervised.

A process that exits is restarted with exponential backoff, and says so; Ctrl-C (or SIGTERM) stops every process it
started. While it runs, build/stack.json holds its addresses for `make rollout` / `make rollback`.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from libs.config import REPO_ROOT, Addresses
from libs.stack import SERVICES, Stack

RUNNING = REPO_ROOT / "build" / "stack.json"  # addresses of the stack `make run` serves, while it runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default=Addresses().gateway)
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = Stack(addresses={"gateway": args.gateway})
    print("starting Triton and services (logs in build/logs/) ...", flush=True)
    with stack:
        print(
            f"serving: gateway {stack.addresses['gateway']}, triton {stack.triton.grpc_url}; "
            f"inner: {', '.join(f'{n} {stack.addresses[n]}' for n in SERVICES[:-1])}",
            flush=True,
        )
        print("A process that exits is restarted with backoff. Ctrl-C stops everything.", flush=True)
        # Where this stack listens, for `make rollout` / `make rollback` run from another shell.
        RUNNING.write_text(json.dumps({"triton": stack.triton.grpc_url, **stack.addresses}) + "\n")
        try:
            stack.supervise(stop)
        finally:
            RUNNING.unlink(missing_ok=True)
    print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
