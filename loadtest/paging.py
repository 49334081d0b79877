"""What storefront pages and filters cost (issue 23, item 6), in one run on the in-process floor (loadtest.floor:
the gateway's core over the real indexes, rankers in ONNX Runtime and a SQLite event store; no gRPC hops).

Interleaved per query, so every row sees the same machine load:
- first page, kept list 20 deep (what the gateway did before pages: rank, serve and keep the page),
- first page, kept list 200 deep (now: the page plus the list its later pages slice),
- page 2 (a slice of the kept list: no retrieval, no ranking),
- first page under a price band (retrieval searches deeper until 200 candidates match);
and the bytes the event store keeps per response for a page vs the 200-deep list.

    python -m loadtest.paging --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence

import libs.gateway
from libs.domain import Money
from libs.events.base import response_body
from libs.gateway import Budget
from libs.storefront import MAX_RESULTS, Browse, ProductFilter
from loadtest.floor import InProcessShop

QUERIES = ("christmas", "heart", "bag", "lantern", "cake", "vintage", "box", "card", "tea set", "lunch bag")
USER = "17850"
PAGE = 20
BAND = ProductFilter(min_price=Money("GBP", 0, 500_000_000), max_price=Money("GBP", 1))


async def _timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    page = await call
    return (time.perf_counter() - started) * 1000, page


async def run(rounds: int) -> dict[str, list[float]]:
    shop = InProcessShop(deadline_s=10.0)
    core = shop.core
    ms: dict[str, list[float]] = {k: [] for k in ("kept 20", "kept 200", "page 2", "band, kept 200")}
    try:
        for query in QUERIES:  # warm-up: caches of the query encoder and the ONNX sessions
            await core.search(query, USER, PAGE, False, Budget(time.monotonic() + 10))
        for _ in range(rounds):
            for query in QUERIES:
                libs.gateway.MAX_RESULTS = PAGE
                t, _ = await _timed(core.search(query, USER, PAGE, False, Budget(time.monotonic() + 10)))
                ms["kept 20"].append(t)
                libs.gateway.MAX_RESULTS = MAX_RESULTS
                t, first = await _timed(core.search(query, USER, PAGE, False, Budget(time.monotonic() + 10)))
                ms["kept 200"].append(t)
                later = Browse(page_token=first.next_page_token)
                t, _ = await _timed(core.search(query, USER, PAGE, False, Budget(time.monotonic() + 10), later))
                ms["page 2"].append(t)
                t, _ = await _timed(core.search(query, USER, PAGE, False, Budget(time.monotonic() + 10), Browse(BAND)))
                ms["band, kept 200"].append(t)
    finally:
        libs.gateway.MAX_RESULTS = MAX_RESULTS
        shop.close()
    return ms


def table(ms: dict[str, list[float]]) -> str:
    base = statistics.median(ms["kept 20"])
    lines = ["| Search, page_size 20 | n | p50 ms | p95 ms | p50 / kept 20 |", "|---|---|---|---|---|"]
    for name, values in ms.items():
        p50 = statistics.median(values)
        p95 = statistics.quantiles(values, n=20)[-1]
        lines.append(f"| {name} | {len(values)} | {p50:.1f} | {p95:.1f} | {p50 / base:.2f} |")
    return "\n".join(lines)


def record_sizes() -> str:
    """Bytes the event store keeps per ranked response (libs.events.base.response_body), for a real Search's list."""
    shop = InProcessShop(deadline_s=10.0)
    try:
        kept: list = []
        original = shop.core.events.keep_response
        shop.core.events.keep_response = lambda r: (kept.append(r), original(r))[1]
        for depth in (PAGE, MAX_RESULTS):
            libs.gateway.MAX_RESULTS = depth
            asyncio.run(shop.core.search("christmas", USER, PAGE, False, Budget(time.monotonic() + 10)))
    finally:
        libs.gateway.MAX_RESULTS = MAX_RESULTS
        shop.close()
    lines = ["| kept per response | results | bytes |", "|---|---|---|"]
    for label, r in zip(("list 20 deep (a page)", "list 200 deep (now)"), kept):
        lines.append(f"| {label} | {len(r.results)} | {len(response_body(r).encode())} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.paging", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds over the queries")
    args = parser.parse_args(argv)
    print(table(asyncio.run(run(args.rounds))))
    print()
    print(record_sizes())


if __name__ == "__main__":
    main()
