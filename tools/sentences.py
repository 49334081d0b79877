"""How varied the explanation sentences are, on the real stack: the share of distinct sentences per page of 20, for
Recommend (40 customers) and Search (40 WANDS queries, each with one of those customers), explain=true.

    python -m tools.sentences                      # starts its own stack (Triton + services), stops it after
    python -m tools.sentences --gateway HOST:PORT  # or asks a running gateway (`make run`: build/stack.json)

Prints a markdown table; `--dump FILE` writes every page (sentences and evidence) as JSON, e.g. to judge a sample.
Customers: a fixed-seed sample of the dataset's customers; queries: the first distinct ones of the WANDS file.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf import json_format
from shop.gateway.v1 import gateway_service_pb2 as pb
from shop.gateway.v1 import gateway_service_pb2_grpc

from libs.catalog.store import default_data_dir, load_dataset
from loadtest.payloads import read_queries
from tools.stack import Stack

PAGE_SIZE = 20
SEED = 25
TARGET = 0.8


@dataclass(frozen=True)
class PageStats:
    rpc: str
    pages: int
    results: int
    mean_share: float
    min_share: float
    pages_at_target: int


def distinct_share(sentences: Sequence[str]) -> float:
    return len(set(sentences)) / len(sentences)


def stats(rpc: str, pages: Sequence[Sequence[str]]) -> PageStats:
    shares = [distinct_share(p) for p in pages if p]
    return PageStats(
        rpc,
        len(shares),
        sum(len(p) for p in pages),
        sum(shares) / max(len(shares), 1),
        min(shares, default=0.0),
        sum(s >= TARGET for s in shares),
    )


def table(rows: Sequence[PageStats]) -> str:
    out = [
        "| RPC | pages with results | results | distinct sentences per page (mean) | min | pages >= 80% |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    out += [
        f"| {r.rpc} | {r.pages} | {r.results} | {r.mean_share:.1%} | {r.min_share:.1%} | {r.pages_at_target} |"
        for r in rows
    ]
    return "\n".join(out)


def collect(
    stub: gateway_service_pb2_grpc.GatewayServiceStub, customers: Sequence[str], queries: Sequence[str]
) -> dict[str, list[dict]]:
    """Every page as protobuf JSON, with the request that produced it."""
    out: dict[str, list[dict]] = {"Recommend": [], "Search": []}
    for user in customers:
        resp = stub.Recommend(pb.RecommendRequest(user_id=user, page_size=PAGE_SIZE, explain=True), timeout=30)
        out["Recommend"].append({"user_id": user, "response": json_format.MessageToDict(resp)})
    for query, user in zip(queries, customers):
        resp = stub.Search(pb.SearchRequest(query=query, user_id=user, page_size=PAGE_SIZE, explain=True), timeout=30)
        out["Search"].append({"query": query, "user_id": user, "response": json_format.MessageToDict(resp)})
    return out


def sentences_of(page: dict) -> list[str]:
    return [r.get("explanation", {}).get("sentence", "") for r in page["response"].get("results", [])]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", help="address of a running gateway (default: start a stack)")
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--query-file", type=Path, default=default_data_dir() / "wands_queries" / "query.csv")
    parser.add_argument("--dump", type=Path, help="write the pages as JSON here")
    args = parser.parse_args(argv)
    users = sorted(str(u) for u in load_dataset().customers["user_id"])
    customers = random.Random(SEED).sample(users, args.customers)
    queries = read_queries(args.query_file)[: args.queries]
    stack = None if args.gateway else Stack().start()
    try:
        address = args.gateway or stack.addresses["gateway"]
        with grpc.insecure_channel(address) as channel:
            pages = collect(gateway_service_pb2_grpc.GatewayServiceStub(channel), customers, queries)
    finally:
        if stack is not None:
            stack.stop()
    if args.dump:
        args.dump.parent.mkdir(parents=True, exist_ok=True)
        args.dump.write_text(json.dumps(pages, indent=1, ensure_ascii=False) + "\n")
    print(table([stats(rpc, [sentences_of(p) for p in ps]) for rpc, ps in pages.items()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
