"""Realistic request payloads for Search and Recommend, built from the real data, and the ghz configs using them.

    python -m loadtest.payloads      # writes loadtest/ghz/data/{search,recommend}.json and loadtest/ghz/*.json

Search: every WANDS query (the shopper phrasing the catalogue is judged on), 70 % with a known customer id
(personalised path: history + both rankers), 30 % anonymous; Recommend: known customers plus 5 % unknown ids
(cold start). 20 % of requests ask for explanations, the costly path. Fixed seed, so files are reproducible and
the local driver and ghz on a cluster send the same requests. Payloads are protobuf JSON (json_format), which ghz
and `json_format.ParseDict` both read.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GHZ_DIR = Path(__file__).resolve().parent / "ghz"
DATA_DIR = GHZ_DIR / "data"
SEED = 8
PAGE_SIZE = 20
KNOWN_USER_SHARE = 0.7
EXPLAIN_SHARE = 0.2
COLD_START_SHARE = 0.05
N_RECOMMEND = 500
SERVICE = "shop.gateway.v1.GatewayService"
RPCS = ("Search", "Recommend")
# Requests per mix cycle: shoppers search more often than they open a "for you" page.
MIX = {"Search": 3, "Recommend": 1}
# ghz runs on a cluster: one config per RPC and concurrency level (ghz reads settings from the file only).
GHZ_LEVELS = (1, 4, 16, 64)
GHZ_DURATION = "60s"
GHZ_CPUS = 2
GHZ_HOST = "gateway:50051"  # the gateway Service, from a pod in the same namespace


def read_queries(path: Path) -> list[str]:
    """WANDS queries (TAB-separated query_id, query, query_class), de-duplicated, file order."""
    import pandas as pd

    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    seen: dict[str, None] = {}
    for q in df["query"]:
        q = " ".join(q.split())
        if q:
            seen.setdefault(q, None)
    return list(seen)


def search_payloads(queries: Sequence[str], users: Sequence[str], seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for q in queries:
        p: dict = {"query": q, "pageSize": PAGE_SIZE}
        if users and rng.random() < KNOWN_USER_SHARE:
            p["userId"] = rng.choice(users)
        if rng.random() < EXPLAIN_SHARE:
            p["explain"] = True
        out.append(p)
    return out


def recommend_payloads(users: Sequence[str], n: int = N_RECOMMEND, seed: int = SEED) -> list[dict]:
    rng = random.Random(seed + 1)
    known = set(users)
    out = []
    for _ in range(n):
        if rng.random() < COLD_START_SHARE:
            uid = str(rng.randrange(900_000, 999_999))  # digits, valid, but not a customer: cold start
            while uid in known:
                uid = str(rng.randrange(900_000, 999_999))
        else:
            uid = rng.choice(users)
        p: dict = {"userId": uid, "pageSize": PAGE_SIZE}
        if rng.random() < EXPLAIN_SHARE:
            p["explain"] = True
        out.append(p)
    return out


def ghz_config(
    rpc: str, concurrency: int, duration: str = GHZ_DURATION, cpus: int = GHZ_CPUS, host: str = GHZ_HOST
) -> dict:
    """One ghz run. No proto/protoset: ghz reads the schema through server reflection. Paths are relative to the
    repository root (run ghz from there)."""
    return {
        "name": f"shop {rpc} c={concurrency}",
        "call": f"{SERVICE}.{rpc}",
        "host": host,
        "insecure": True,
        "data-file": f"loadtest/ghz/data/{rpc.lower()}.json",  # an array: ghz sends its elements round-robin
        "concurrency": concurrency,
        # Several HTTP/2 connections, so a ClusterIP Service spreads them over gateway pods.
        "connections": min(concurrency, 8),
        "duration": duration,
        "timeout": "5s",
        "connect-timeout": "10s",
        "cpus": cpus,
        "format": "json",
        "output": f"reports/load-ghz-{rpc.lower()}-c{concurrency}.json",
        "tags": {"rpc": rpc, "concurrency": str(concurrency)},
    }


def load(rpc: str, data_dir: Path = DATA_DIR) -> list[dict]:
    return json.loads((data_dir / f"{rpc.lower()}.json").read_text())


def write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


def main() -> int:
    from libs.catalog.store import default_data_dir, load_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=Path, default=default_data_dir() / "wands_queries" / "query.csv")
    args = parser.parse_args()
    users = sorted(str(u) for u in load_dataset().customers["user_id"])
    queries = read_queries(args.queries)
    write_json(DATA_DIR / "search.json", search_payloads(queries, users))
    write_json(DATA_DIR / "recommend.json", recommend_payloads(users))
    for rpc in RPCS:
        for c in GHZ_LEVELS:
            write_json(GHZ_DIR / f"{rpc.lower()}-c{c}.json", ghz_config(rpc, c))
    print(
        f"{len(queries)} queries, {len(users)} customers -> {DATA_DIR.relative_to(ROOT)}; "
        f"{len(RPCS) * len(GHZ_LEVELS)} ghz configs in {GHZ_DIR.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
