"""What the new products' signals (libs/fresh_signals.py) cost: a benchmark slice that prints a table.

    python -m loadtest.signals [--new 10,100,1000] [--orders 20] [--pg-url URL]

An event store (SQLite in a temporary file, and a throwaway PostgreSQL database when --pg-url answers) holds the
recorded purchases of `--new` products newer than the bundle, `--orders` baskets each, every basket with two
products of the real catalogue, plus 20,000 purchases of the real catalogue's products (what the query must not
scan). Measured per size, median of 7, off the request path (libs.fresh_signals.NewProductSignals's reads): the
first read of products joining the catalogue (their whole history), a poll with nothing new, a poll after one
RecordEvents call's worth of their purchases (500); and on the request path, per ranker call for a page of 200
candidates (10 of them new): FreshSignals.rows + with_new_signals on inputs shaped as gnn_ranker's.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg

from libs.catalog.store import load_dataset
from libs.config import artifacts_dir
from libs.domain import EventKind, RecordedEvent, UserEvent
from libs.events import EventStore, SqliteEventStore
from libs.events.postgres import PostgresEventStore
from libs.features.fresh import FreshSignals
from libs.model_io import CAND_NBR_IDS, CAND_NBR_MASK, CAND_NBR_WEIGHT, ITEM_NEIGHBOURS, POP_FEATS, POP_FEATURES
from libs.scoring import with_new_signals
from loadtest.catalog import PG_URL, throwaway_database

CANDIDATES = 200
NEW_ON_PAGE = 10
BACKGROUND = 20_000


def _median_ms(fn: Callable[[], object], repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _fill(
    store: EventStore, catalogue: list[str], new: list[str], orders: int, rng: random.Random, background: int
) -> None:
    events, n = [], 0
    tag = uuid.uuid4().hex[:8]
    for p in new:
        for k in range(orders):
            user, ts = f"9{rng.randrange(10**6):06d}", 1.7e9 + rng.randrange(10**6)
            for product in (p, *rng.sample(catalogue, 2)):
                n += 1
                events.append(RecordedEvent(f"{tag}-{n}", user, UserEvent(product, EventKind.PURCHASE, ts, 1), "", ""))
    for _ in range(background):
        n += 1
        user, ts = f"8{rng.randrange(10**6):06d}", 1.7e9 + rng.randrange(10**6)
        event = UserEvent(rng.choice(catalogue), EventKind.PURCHASE, ts, 1)
        events.append(RecordedEvent(f"{tag}-{n}", user, event, "", ""))
    for i in range(0, len(events), 500):
        store.append(events[i : i + 500])


def _inputs() -> dict[str, np.ndarray]:
    return {
        POP_FEATS: np.zeros((1, CANDIDATES, POP_FEATURES), np.float32),
        CAND_NBR_IDS: np.zeros((1, CANDIDATES, ITEM_NEIGHBOURS), np.int64),
        CAND_NBR_WEIGHT: np.zeros((1, CANDIDATES, ITEM_NEIGHBOURS), np.float32),
        CAND_NBR_MASK: np.zeros((1, CANDIDATES, ITEM_NEIGHBOURS), np.float32),
    }


def measure(
    store: EventStore, label: str, sizes: list[int], orders: int, catalogue: list[str], index, age=lambda: None
) -> list[dict]:
    """`age`: makes what was recorded so far old (PostgreSQL re-reads the last RECORDED_MARGIN_S of recordings)."""
    rows = []
    rng = random.Random(7)
    made: list[str] = []
    for size in sizes:
        new = [f"NEW-{i}" for i in range(len(made), size)]
        _fill(store, catalogue, new, orders, rng, 0 if made else BACKGROUND)
        age()
        made += new
        joined = _median_ms(lambda: FreshSignals.build(store.baskets_of(made)[0]))
        found, position = store.baskets_of(made)
        signals = FreshSignals.build(found)
        idle = _median_ms(lambda: signals.add(store.baskets_of(made, position)[0]))
        after_call = []
        for _ in range(7):  # one RecordEvents call's worth (500 purchases of new products' baskets) since the poll
            _fill(store, catalogue, rng.sample(made, min(len(made), 167)), 1, rng, 0)
            start = time.perf_counter()
            found, position = store.baskets_of(made, position)
            signals.add(found)
            after_call.append(time.perf_counter() - start)
        page = rng.sample(catalogue, CANDIDATES - NEW_ON_PAGE) + made[:NEW_ON_PAGE]
        cand_idx = np.asarray(index.get_indexer(page), np.int64)
        built = _inputs()
        request = _median_ms(lambda: with_new_signals(built, cand_idx, signals.rows(page, index)), repeat=51)
        rows.append(
            {
                "store": label,
                "new products": size,
                "their purchases": size * orders,
                "first read (products joining), ms": round(joined, 1),
                "poll, nothing new, ms": round(idle, 2),
                "poll after 500 new purchases, ms": round(statistics.median(after_call) * 1e3, 1),
                "per request (200 candidates, 10 new), ms": round(request, 3),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.signals", description=__doc__.splitlines()[0])
    parser.add_argument("--new", default="10,100,1000", help="numbers of new products, increasing")
    parser.add_argument("--orders", type=int, default=20, help="baskets per new product")
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args(argv)
    items = load_dataset(artifacts_dir()).items
    catalogue = items["product_id"].astype(str).tolist()
    index = items.set_index("product_id").index
    sizes = [int(x) for x in args.new.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SqliteEventStore(Path(tmp) / "events.sqlite3")
        results += measure(sqlite, "SQLite", sizes, args.orders, catalogue, index)
        sqlite.close()
    try:
        with throwaway_database(args.pg_url) as dsn:
            pg = PostgresEventStore(dsn)

            def age() -> None:  # as if recorded an hour ago: the steady state, not a just-filled table
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("UPDATE events SET recorded_at = recorded_at - interval '1 hour'")
                    conn.execute("ANALYZE events")  # as autovacuum would

            results += measure(pg, "PostgreSQL", sizes, args.orders, catalogue, index, age)
            pg.close()
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL skipped: {exc}")
    head = list(results[0])
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in results:
        print("| " + " | ".join(str(r[k]) for k in head) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
