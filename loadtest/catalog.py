"""How fresh is a living catalogue? A benchmark (reports/catalog.{md,json}), not a test.

    python -m loadtest.catalog [--ingest 2000] [--fresh 100] [--incremental 10000] [--pg-url URL]

Two full replicas (gateway, retrieval, ranking, explanation each) share one real PostgreSQL catalogue (a throwaway
database on the server at --pg-url, default 127.0.0.1:5432) and one Triton, over loopback gRPC. Measured
from where a client stands:

- freshness: UpsertProducts of one product on replica 1 (acknowledged) until replica 2's Search for its title words
  returns it, polled every 10 ms; p50/p99 over `--fresh` products;
- ingest throughput: `--ingest` products in calls of 100 on replica 1, from the first call until replica 2's
  retrieval finds the last one (title embedding by Triton included);
- Search p50 on replica 2 idle, and while that ingest runs (the ratio is the target);
- index recall@10 (usearch, vs exact cosine) after `--incremental` synthetic products added in batches of 64 (as
  the follower adds them) to an index of the real catalogue, against one built from all of them at once;
- memory (RSS) of each replica's processes.
Targets (issue 23): freshness p99 <= 2 s; Search p50 during ingest <= 1.3 x idle; recall after incremental inserts
>= 0.98 x a fresh build's.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from collections.abc import Iterator

import grpc
import numpy as np
import psycopg
from google.type import money_pb2
from shop.catalog.v1 import catalog_service_pb2 as pb
from shop.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from shop.common.v1 import common_pb2 as cpb
from shop.gateway.v1 import gateway_service_pb2 as gpb
from shop.gateway.v1 import gateway_service_pb2_grpc as gpb_grpc
from shop.retrieval.v1 import retrieval_service_pb2 as qpb
from shop.retrieval.v1 import retrieval_service_pb2_grpc as qpb_grpc

from libs.catalog.store import load_dataset
from libs.config import REPORTS_DIR, artifacts_dir, models_dir
from libs.index.dense import UsearchIndex, normalised
from libs.index.products import EMBED_BATCH
from libs.model_io import ITEM_EMBEDDINGS_FILE
from loadtest.scale import synthetic_catalogue
from loadtest.stats import machine, percentiles_ms, write_report
from libs.stack import SERVICES, Stack

PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
QUERIES = (
    "lantern",
    "tea cup",
    "lunch bag",
    "christmas decoration",
    "heart holder",
    "cake stand",
    "doormat",
    "wall clock",
    "jam jar",
    "party bunting",
)
PER_CALL = 100
POLL_S = 0.01


@contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    name = f"bench_catalog_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@contextmanager
def two_replicas(dsn: str, logs: Path) -> Iterator[tuple[Stack, Stack]]:
    first = Stack(env={"SHOP_EVENTS_DSN": dsn}, log_dir=logs / "replica1")
    second = None
    try:
        first.start()
        second = Stack(
            env={"SHOP_EVENTS_DSN": dsn, "SHOP_TRITON_URL": first.triton.grpc_url}, log_dir=logs / "replica2"
        ).start(with_triton=False)
        yield first, second
    finally:
        if second is not None:
            second.stop()
        first.stop()


def _product(word: str, n: int) -> pb.Product:
    return pb.Product(
        product_id=f"B-{word}-{n}",
        title=f"{word.upper()} {QUERIES[n % len(QUERIES)].upper()}",
        price=money_pb2.Money(currency_code="GBP", units=3),
        availability=cpb.AVAILABILITY_IN_STOCK,
    )


def freshness(catalog: pb_grpc.CatalogServiceStub, gateway: gpb_grpc.GatewayServiceStub, n: int) -> list[float]:
    delays = []
    for i in range(n):
        word = "zq" + uuid.uuid4().hex[:8]
        product = _product(word, i)
        catalog.UpsertProducts(pb.UpsertProductsRequest(products=[product]), timeout=10)
        acked = time.monotonic()
        while product.product_id not in [
            r.product.product_id for r in gateway.Search(gpb.SearchRequest(query=word, page_size=5), timeout=10).results
        ]:
            if time.monotonic() - acked > 30:
                raise RuntimeError(f"{product.product_id} not searchable on the other replica after 30 s")
            time.sleep(POLL_S)
        delays.append(time.monotonic() - acked)
    return delays


def search_latencies(gateway: gpb_grpc.GatewayServiceStub, until: threading.Event | None, count: int) -> list[float]:
    out = []
    while (until is None and len(out) < count) or (until is not None and not until.is_set()):
        t = time.perf_counter()
        gateway.Search(gpb.SearchRequest(query=QUERIES[len(out) % len(QUERIES)], page_size=20), timeout=10)
        out.append(time.perf_counter() - t)
    return out


def ingest(catalog: pb_grpc.CatalogServiceStub, retrieval: qpb_grpc.RetrievalServiceStub, n: int) -> float:
    """Seconds from the first UpsertProducts until the other replica's retrieval finds the last product."""
    word = "zq" + uuid.uuid4().hex[:8]
    products = [_product(f"{word}{i:05d}", i) for i in range(n)]
    start = time.monotonic()
    for i in range(0, n, PER_CALL):
        catalog.UpsertProducts(pb.UpsertProductsRequest(products=products[i : i + PER_CALL]), timeout=30)
    last = products[-1]
    query = last.title.split()[0].lower()
    while last.product_id not in [
        c.product.product_id
        for c in retrieval.RetrieveQueryCandidates(
            qpb.RetrieveQueryCandidatesRequest(query=query, page_size=10), timeout=10
        ).candidates
    ]:
        if time.monotonic() - start > 600:
            raise RuntimeError("ingest not searchable after 600 s")
        time.sleep(POLL_S)
    return time.monotonic() - start


def incremental_recall(n_new: int, n_queries: int = 500) -> dict:
    """recall@10 vs exact of an index of the real catalogue plus `n_new` synthetic products added in batches,
    and of one built from all at once (queries: the served encoder's real query embeddings)."""
    emb = np.load(models_dir() / ITEM_EMBEDDINGS_FILE).astype(np.float32)
    titles = load_dataset(artifacts_dir()).items["title"].tolist()
    factor = 1 + -(-n_new // len(titles))
    _, big, _ = synthetic_catalogue(titles, emb, factor)
    vectors = normalised(big[: len(titles) + n_new])
    queries = normalised(np.load(models_dir() / "query_embeddings.npy")[:n_queries])
    want = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    incremental = UsearchIndex(vectors.shape[1])
    incremental.upsert(list(range(len(titles))), vectors[: len(titles)])
    t = time.perf_counter()
    for i in range(len(titles), len(vectors), EMBED_BATCH):
        incremental.upsert(list(range(i, min(i + EMBED_BATCH, len(vectors)))), vectors[i : i + EMBED_BATCH])
    incremental_s = time.perf_counter() - t
    fresh = UsearchIndex(vectors.shape[1])
    fresh.upsert(list(range(len(vectors))), vectors)

    def recall(index: UsearchIndex) -> float:
        return float(
            np.mean(
                [len({k for k, _ in index.search(q, 10)} & set(want[r].tolist())) / 10 for r, q in enumerate(queries)]
            )
        )

    return {
        "products": len(vectors),
        "inserted": n_new,
        "incremental_recall@10": recall(incremental),
        "fresh_recall@10": recall(fresh),
        "insert_per_s": n_new / incremental_s,
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(args: argparse.Namespace) -> dict:
    report: dict = {"recall": incremental_recall(args.incremental)}
    with (
        throwaway_database(args.pg_url) as dsn,
        tempfile.TemporaryDirectory() as logs,
        two_replicas(dsn, Path(logs)) as (first, second),
        grpc.insecure_channel(first.addresses["gateway"]) as c1,
        grpc.insecure_channel(second.addresses["gateway"]) as c2,
        grpc.insecure_channel(second.addresses["retrieval"]) as r2,
    ):
        catalog, gateway, retrieval = (
            pb_grpc.CatalogServiceStub(c1),
            gpb_grpc.GatewayServiceStub(c2),
            qpb_grpc.RetrievalServiceStub(r2),
        )
        search_latencies(gateway, None, 20)  # warm-up
        delays = freshness(catalog, gateway, args.fresh)
        idle = search_latencies(gateway, None, args.searches)
        done = threading.Event()
        during: list[float] = []
        searcher = threading.Thread(target=lambda: during.extend(search_latencies(gateway, done, 0)))
        searcher.start()
        try:
            ingest_s = ingest(catalog, retrieval, args.ingest)
        finally:
            done.set()
            searcher.join()
        memory = {
            f"replica{n}": {name: rss_mb(stack.processes[name].pid) for name in SERVICES}
            for n, stack in ((1, first), (2, second))
        }
    p50_idle, p50_during = percentiles_ms(idle, (50,))[0], percentiles_ms(during, (50,))[0]
    fresh_p50, fresh_p99 = percentiles_ms(delays, (50, 99))
    rec = report["recall"]
    report |= {
        "freshness_ms": {"p50": fresh_p50, "p99": fresh_p99, "max": max(delays) * 1000, "n": len(delays)},
        "ingest": {"products": args.ingest, "seconds": ingest_s, "products_per_s": args.ingest / ingest_s},
        "search_p50_ms": {"idle": p50_idle, "during_ingest": p50_during, "n_idle": len(idle), "n_during": len(during)},
        "memory_mb": memory,
        "targets": {
            "freshness_p99_ms": {"value": fresh_p99, "target": "<= 2000", "ok": fresh_p99 <= 2000},
            "search_p50_during_over_idle": {
                "value": p50_during / p50_idle,
                "target": "<= 1.3",
                "ok": p50_during / p50_idle <= 1.3,
            },
            "incremental_over_fresh_recall": {
                "value": rec["incremental_recall@10"] / rec["fresh_recall@10"],
                "target": ">= 0.98",
                "ok": rec["incremental_recall@10"] >= 0.98 * rec["fresh_recall@10"],
            },
        },
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
    }
    return report


def markdown(r: dict) -> str:
    f, i, s, rec = r["freshness_ms"], r["ingest"], r["search_p50_ms"], r["recall"]
    md = [
        "# Catalogue freshness benchmark (`python -m loadtest.catalog`)",
        "",
        f"Run {r['finished']}, {r['machine']}. Two replicas, one PostgreSQL catalogue, one Triton (CPU), loopback "
        "gRPC; everything on this one machine.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| freshness p50 / p99 / max, ms (upsert on replica 1 -> Search on replica 2, n={f['n']}) | "
        f"{f['p50']:.0f} / {f['p99']:.0f} / {f['max']:.0f} |",
        f"| ingest, products/s through UpsertProducts (calls of {PER_CALL}, embedding included; {i['products']} "
        f"products in {i['seconds']:.1f} s) | {i['products_per_s']:.0f} |",
        f"| Search p50 idle, ms (n={s['n_idle']}) | {s['idle']:.1f} |",
        f"| Search p50 during the ingest, ms (n={s['n_during']}) | {s['during_ingest']:.1f} |",
        f"| recall@10 after {rec['inserted']} incremental inserts ({rec['products']} products) | "
        f"{rec['incremental_recall@10']:.3f} |",
        f"| recall@10 of a fresh build of the same products | {rec['fresh_recall@10']:.3f} |",
        f"| incremental inserts per s (usearch, batches of {EMBED_BATCH}, one thread) | {rec['insert_per_s']:.0f} |",
        "",
    ]
    md += ["| memory (RSS MB) | " + " | ".join(SERVICES) + " |", "|---|" + "---:|" * len(SERVICES)]
    md += [f"| {name} | " + " | ".join(f"{m[s]:.0f}" for s in SERVICES) + " |" for name, m in r["memory_mb"].items()]
    md += ["", "| target | value | goal | met |", "|---|---:|---|---|"]
    md += [
        f"| {k} | {v['value']:.3f} | {v['target']} | {'yes' if v['ok'] else 'NO'} |" for k, v in r["targets"].items()
    ]
    return "\n".join(md) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ingest", type=int, default=2000)
    parser.add_argument("--fresh", type=int, default=100)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--incremental", type=int, default=10000)
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL server to create the throwaway database on")
    parser.add_argument("--reports", type=Path, default=REPORTS_DIR)
    args = parser.parse_args(argv)
    report = run(args)
    write_report(args.reports, "catalog", report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
