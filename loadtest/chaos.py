"""Fault suite: the stack (supervised, as `make run` runs it) under hostile input, crashes and overload.

    python -m loadtest.chaos                         # make chaos: every phase, reports/chaos.{json,md}
    python -m loadtest.chaos --phases fuzz,triton --fuzz 1000    # the fast subset (also an integration test)
    python -m loadtest.chaos --soak-s 600            # adds the soak at half of peak throughput

Phases, each with its targets (printed with the figure measured; exit 1 when one misses):
- fuzz: requests generated from the proto descriptors with hostile values of every kind (loadtest/fuzz.py) over
  every method of every public service the gateway serves (found by reflection): 0 INTERNAL, 0 UNKNOWN,
  0 UNAVAILABLE; every INVALID_ARGUMENT names a field of the request; requests past 4 MiB get RESOURCE_EXHAUSTED;
  health SERVING afterwards; every user touched still gets OK. Then a tenth as many straight at each inner
  service's methods, same targets.
- triton: kill -9 Triton under a closed loop of Search/Recommend with explanations; the supervisor restarts it.
  Every answer OK or OK-flagged-degraded; the recovery timeline from the kill (relaunch, server ready, models
  loaded, readiness back, first clean answer), first clean answer <= 5 s after the kill; ranking and explanation
  readiness went NOT_SERVING and back (<= 2 s after the models loaded); no process of the killed Triton's group
  left.
- inner: kill -9 ranking, then explanation, then retrieval, under the same loop: ranking/explanation down = OK
  degraded answers only; retrieval down = OK or UNAVAILABLE with RetryInfo only; each is restarted and serves again.
- overload: open loop at 10x the measured peak for 30 s: admitted answers' p99 within their deadline, the rest
  RESOURCE_EXHAUSTED, every process alive afterwards.
- catalog-down: the catalogue's PostgreSQL database refuses connections for 8 s (--outage-s) under the closed loop
  (loadtest/catalog_faults.py): every Search/Recommend OK, flagged STAGE_CATALOG; GetProduct/ListProducts/Search
  serve the last read copy, flagged; Upsert/Delete UNAVAILABLE with RetryInfo, nothing of them stored; from the
  moment the database is back, a write acknowledged <= 5 s and the product it wrote searchable <= 2 s after that.
- write-kill: kill -9 of the gateway right after acknowledged UpsertProducts, 5 times x 40 acknowledged writes, on
  PostgreSQL and then on SQLite (the gateway alone restarted on the SQLite events file): 0 acknowledged writes lost.
- soak (opt-in, --soak-s): open loop at half of peak: 0 errors, RSS growth < 10 % per process.

The stack runs with a catalogue write token (SHOP_CATALOG_WRITE_TOKEN) that the fuzzer sends, so CatalogService's
writes are fuzzed through their validation, not stopped at auth; with a catalogue phase selected its catalogue is a
throwaway database on the PostgreSQL server of --pg-url (SHOP_CATALOG_DSN).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from libs.config import REPO_ROOT, REPORTS_DIR
from libs.stack import Stack
from loadtest.catalog import PG_URL, throwaway_database
from loadtest.catalog_faults import catalog_down, database_name, restart_gateway, write_kill
from loadtest.faults import health_of, inner_kill, overload, peak, soak, supervised, triton_kill
from loadtest.hostile import fuzz_stack
from loadtest.suite import Figure

PHASES = ("fuzz", "triton", "inner", "overload", "catalog-down", "write-kill")
CATALOG_PHASES = ("catalog-down", "write-kill")


async def run(
    stack: Stack,
    phases: Sequence[str],
    fuzz_n: int,
    soak_s: float,
    pg: tuple[str, str] | None = None,
    outage_s: float = 8.0,
) -> tuple[list[Figure], dict]:
    """`pg`: (admin URL, name) of the catalogue's PostgreSQL database, for the catalogue phases."""
    figures: list[Figure] = []
    details: dict = {}
    if "fuzz" in phases:
        f, details["fuzz"] = await fuzz_stack(stack, fuzz_n)
        figures += f
    if "triton" in phases:
        f, details["triton"] = await triton_kill(stack)
        figures += f
    if "inner" in phases:
        for name in ("ranking", "explanation", "retrieval"):
            await _ready(stack)
            f, details[f"kill_{name}"] = await inner_kill(stack, name)
            figures += f
    if "catalog-down" in phases:
        await _ready(stack)
        f, details["catalog_down"] = await catalog_down(stack, *pg, outage_s=outage_s)
        figures += f
    if "write-kill" in phases:
        await _ready(stack)
        f, details["write_kill_postgres"] = await write_kill(stack, "PostgreSQL")
        figures += f
        # What a kill tests is the gateway's own catalogue store: the gateway alone moves to the SQLite events file.
        dsn = stack.env.pop("SHOP_CATALOG_DSN")
        try:
            await asyncio.to_thread(restart_gateway, stack)
            f, details["write_kill_sqlite"] = await write_kill(stack, "SQLite")
            figures += f
        finally:
            stack.env["SHOP_CATALOG_DSN"] = dsn
            await asyncio.to_thread(restart_gateway, stack)
    if "overload" in phases or soak_s:
        await _ready(stack)
        peak_rps = await peak(stack)
        details["peak_rps"] = round(peak_rps, 1)
        if "overload" in phases:
            f, details["overload"] = await overload(stack, peak_rps)
            figures += f
        if soak_s:
            await _ready(stack)
            f, details["soak"] = await soak(stack, peak_rps, soak_s)
            figures += f
    return figures, details


async def _ready(stack: Stack, timeout_s: float = 180.0) -> None:
    """Every service SERVING (after a phase that broke something)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(await asyncio.gather(*(health_of(a) for a in stack.addresses.values()))):
            return
        await asyncio.sleep(0.5)
    raise TimeoutError("stack not SERVING again")


def write_reports(figures: Sequence[Figure], details: dict, meta: dict, out: Path = REPORTS_DIR) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "chaos.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "passed": all(f.ok for f in figures),
                "figures": [{"name": f.name, "value": f.value, "target": f.target, "ok": f.ok} for f in figures],
                "details": details,
            },
            indent=1,
            default=str,
        )
    )
    lines = [
        "# Fault suite (`make chaos`)",
        "",
        f"Command: `{meta['command']}`; {meta['when']}; {meta['machine']}.",
        "",
        "| figure | measured | target | |",
        "|---|---|---|---|",
    ]
    lines += [f"| {f.name} | {f.value} | {f.target} | {'pass' if f.ok else 'FAIL'} |" for f in figures]
    (out / "chaos.md").write_text("\n".join(lines) + "\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}")
    parser.add_argument("--fuzz", type=int, default=10_000, help="hostile requests in the fuzz phase")
    parser.add_argument("--soak-s", type=float, default=0.0, help="soak duration (0 = no soak; the issue: 600)")
    parser.add_argument("--out", type=Path, default=REPORTS_DIR)
    parser.add_argument("--outage-s", type=float, default=8.0, help="catalog-down: how long the database refuses")
    parser.add_argument(
        "--pg-url", default=PG_URL, help="PostgreSQL server (admin URL) for the catalogue phases' throwaway database"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    import platform
    import sys

    args = parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("grpc_reflection").setLevel(logging.WARNING)  # one line per descriptor file otherwise
    phases = [p for p in args.phases.split(",") if p]
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as cleanup:
        env = {
            "SHOP_EVENTS_DB": str(Path(tmp) / "events.sqlite3"),
            "SHOP_CATALOG_WRITE_TOKEN": secrets.token_hex(16),
        }
        pg = None
        if any(p in CATALOG_PHASES for p in phases):
            env["SHOP_CATALOG_DSN"] = cleanup.enter_context(throwaway_database(args.pg_url))
            pg = (args.pg_url, database_name(env["SHOP_CATALOG_DSN"]))
        stack = Stack(env=env, log_dir=REPO_ROOT / "build" / "chaos")
        print("starting the stack (Triton + 4 services, supervised) ...", flush=True)
        with stack:
            supervisor = supervised(stack)
            try:
                figures, details = asyncio.run(run(stack, phases, args.fuzz, args.soak_s, pg, args.outage_s))
            finally:
                supervisor.set()
            details["restarts"] = stack.restarts
    meta = {
        "command": "python -m loadtest.chaos " + " ".join(argv if argv is not None else sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, no GPU",
    }
    write_reports(figures, details, meta, args.out)
    for f in figures:
        print(f.line(), flush=True)
    passed = all(f.ok for f in figures)
    print(
        f"chaos: {'PASSED' if passed else 'FAILED'} ({sum(f.ok for f in figures)}/{len(figures)} figures on "
        f"target); reports in {args.out}/chaos.md",
        flush=True,
    )
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
