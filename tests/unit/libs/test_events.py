"""Both event store backends run the same tests: SQLite in tmp_path, PostgreSQL in a fresh database of a real
server (skipped with the reason when none is reachable; see tests/postgres.py)."""

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np
import psycopg
import pytest

from libs.domain import EventKind, ModelVersion, RecordedEvent, ServedResponse, Source, UserEvent
from libs.errors import UnavailableError
from libs.config import EventStoreSettings
from libs.events import EventConflictError, EventStore, SqliteEventStore, describe, open_event_store
from libs.events import migrations
from libs.events.base import response_from_body
from libs.events.postgres import PostgresEventStore
from libs.features.fresh import FreshSignals
from libs.events.retention import expire_responses, prune_periodically
from tests import backends


def _event(
    event_id: str,
    user: str = "17850",
    product: str = "85123A",
    ts: float = 100.0,
    kind: EventKind = EventKind.PURCHASE,
    quantity: int = 1,
) -> RecordedEvent:
    return RecordedEvent(event_id, user, UserEvent(product, kind, ts, quantity), "tok", "fused")


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request, tmp_path) -> Iterator[Callable[[], EventStore]]:
    """Opens a new store instance on one shared database per call: each call is another process/replica."""
    yield from backends.opener(request, tmp_path, SqliteEventStore, lambda dsn: PostgresEventStore(dsn, pool_max=4))


@pytest.fixture
def store(open_store) -> EventStore:
    return open_store()


def test_append_is_idempotent_on_event_id(store):
    assert store.append([_event("a"), _event("b")]) == (2, 0)
    assert store.append([_event("a"), _event("c")]) == (1, 1)
    assert len(store.read_purchases()) == 3


def test_events_survive_reopening(open_store):
    first = open_store()
    first.append([_event("a", ts=5.0)])
    first.close()
    assert open_store().recent("17850") == [UserEvent("85123A", EventKind.PURCHASE, 5.0, 1)]


def test_recent_returns_newest_purchases_oldest_first_and_filters_kinds(store):
    store.append(
        [_event(str(i), ts=float(i)) for i in range(5)]
        + [_event("click", ts=9.0, kind=EventKind.CLICK), _event("other", user="1", ts=3.0)]
    )
    assert [e.ts for e in store.recent("17850", limit=3)] == [2.0, 3.0, 4.0]
    assert [e.kind for e in store.recent("17850", limit=1, kinds=[EventKind.CLICK])] == [EventKind.CLICK]
    assert store.recent("404") == []


def test_read_purchases_lists_every_purchase_oldest_first(store):
    store.append([_event("b", ts=20.5, quantity=3), _event("a", user="1", ts=10.25), _event("c", kind=EventKind.CLICK)])
    assert store.read_purchases() == [("1", "85123A", 10.25, 1, "fused"), ("17850", "85123A", 20.5, 3, "fused")]


def test_read_attributed_lists_events_with_a_token_oldest_first(store):
    untracked = RecordedEvent("d", "17850", UserEvent("85123A", EventKind.CLICK, 1.0, 1), "", "")
    store.append(
        [_event("b", ts=20.0, kind=EventKind.CLICK), _event("a", ts=10.0, kind=EventKind.IMPRESSION), untracked]
    )
    assert store.read_attributed() == [("tok", "fused", "IMPRESSION", "85123A"), ("tok", "fused", "CLICK", "85123A")]


def test_same_id_from_two_replicas_is_stored_once(open_store):
    one, two = open_store(), open_store()
    assert one.append([_event("a")]) == (1, 0)
    assert two.append([_event("a"), _event("b")]) == (1, 1)
    assert [p[2] for p in one.read_purchases()] == [100.0, 100.0]


def test_same_id_with_another_payload_is_a_conflict_and_the_batch_is_not_stored(open_store):
    one, two = open_store(), open_store()
    one.append([_event("a", product="P1")])
    with pytest.raises(EventConflictError) as info:
        two.append([_event("new"), _event("a", product="P2")])
    assert info.value.event_ids == ["a"]
    assert [p[1] for p in one.read_purchases()] == ["P1"]
    # A retry without event_time gets a new server time: still a duplicate, and the first time stays.
    assert two.append([_event("a", product="P1", ts=999.0)]) == (0, 1)
    assert one.recent("17850")[0].ts == 100.0


def test_concurrent_appends_from_two_replicas_lose_nothing(open_store):
    stores = [open_store(), open_store()]

    def writer(prefix: str, s: EventStore) -> None:
        for i in range(40):
            # Every writer also re-sends the shared ids: they must be stored once, without deadlocks. A write that
            # waited out the lock timeout (a loaded 2-core CI machine) is UNAVAILABLE and nothing of it is stored:
            # the caller retries, as gateway clients do on UNAVAILABLE + RetryInfo.
            for attempt in range(20):
                try:
                    s.append([_event(f"{prefix}{i}"), _event(f"shared{i}")])
                    break
                except UnavailableError:
                    time.sleep(0.05 * (attempt + 1))

    threads = [threading.Thread(target=writer, args=(p, stores[n % 2])) for n, p in enumerate("wxyz")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stores[0].read_purchases()) == 4 * 40 + 40


def test_prune_deletes_only_older_events(store):
    store.append([_event("old", ts=10.0), _event("new", ts=20.0)])
    assert store.prune(older_than=15.0) == 1
    assert [p[2] for p in store.read_purchases()] == [20.0]


def test_migrations_apply_once_even_when_replicas_start_together(open_store):
    stores = [open_store() for _ in range(4)]
    errors: list[BaseException] = []

    def first_call(s: EventStore) -> None:
        try:
            # A replica that waited out the lock timeout behind the others (a loaded machine) answers UNAVAILABLE
            # and its caller retries, as the contract says; what must never happen is a second migration or any
            # other error.
            for attempt in range(20):
                try:
                    s.recent("1")
                    return
                except UnavailableError:
                    time.sleep(0.05 * (attempt + 1))
            s.recent("1")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_call, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert stores[0].append([_event("a")]) == (1, 0)
    assert open_store().append([_event("a")]) == (0, 1)  # a later start finds the schema as it is


def test_postgres_records_each_migration_version(pg_dsn):
    for _ in range(2):  # the second instance finds every version applied
        store = PostgresEventStore(pg_dsn)
        store.recent("1")  # the first call migrates
        store.close()
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(f"SELECT version, name FROM {migrations.TABLE} ORDER BY version").fetchall()
    assert rows == [(m.version, m.name) for m in migrations.load("postgres")]


def test_postgres_acknowledged_batch_is_visible_from_a_new_connection(pg_dsn):
    store = PostgresEventStore(pg_dsn)
    store.append([_event("a", ts=1.5)])
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT event_id, ts_us FROM events").fetchall() == [("a", 1_500_000)]
    store.close()


def test_postgres_unreachable_is_unavailable():
    store = PostgresEventStore("postgresql://postgres@127.0.0.1:1/postgres", timeout_s=0.3)
    try:
        with pytest.raises(UnavailableError) as info:
            store.append([_event("a")])
        assert info.value.retry_after_s > 0
        with pytest.raises(UnavailableError):
            store.recent("17850")
    finally:
        store.close()


def test_sqlite_locked_full_or_read_only_is_unavailable(tmp_path):
    path = tmp_path / "e.sqlite3"
    store = SqliteEventStore(path, timeout_s=0.1)
    store.append([_event("a")])
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    with pytest.raises(UnavailableError, match="locked"):
        store.append([_event("b")])
    other.execute("ROLLBACK")
    other.close()
    store._conn.execute("PRAGMA query_only = ON")  # as a read-only file would (root ignores chmod)
    with pytest.raises(UnavailableError, match="readonly"):
        store.append([_event("b")])
    store._conn.execute("PRAGMA query_only = OFF")
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full
    with pytest.raises(UnavailableError, match="full"):
        store.append([_event(f"x{i}", product="P" * 500) for i in range(200)])
    assert [p[0] for p in store.read_purchases()] == ["17850"]  # the failed batches left nothing behind
    store.close()


def test_sqlite_file_from_before_migrations_is_adopted_and_unreadable_times_dropped(tmp_path):
    path = tmp_path / "e.sqlite3"
    legacy = sqlite3.connect(path)
    legacy.executescript(migrations.load("sqlite")[0].sql)
    legacy.executemany(
        "INSERT INTO events VALUES (?,?,?,?,?,?,?,?)",
        [
            ("ok", "1", "P1", "PURCHASE", 100.0, 1, "", ""),
            ("far", "1", "P1", "PURCHASE", 253402300799.999999999, 1, "", ""),
        ],
    )
    legacy.commit()
    legacy.close()
    store = SqliteEventStore(path)
    assert store.read_purchases() == [("1", "P1", 100.0, 1, "")]
    store.close()


def test_open_event_store_picks_the_backend_from_the_dsn(tmp_path, pg_dsn):
    sqlite_store = open_event_store(EventStoreSettings(db=tmp_path / "e.sqlite3"), tmp_path)
    pg_store = open_event_store(EventStoreSettings(dsn=pg_dsn, db=tmp_path / "unused.sqlite3"), tmp_path)
    assert isinstance(sqlite_store, SqliteEventStore) and isinstance(pg_store, PostgresEventStore)
    assert not (tmp_path / "unused.sqlite3").exists()
    sqlite_store.close()
    pg_store.close()


def test_migration_folders_must_be_numbered_without_gaps(tmp_path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="without gaps"):
        migrations.load("x", tmp_path)
    (tmp_path / "2_b.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="NNNN_name"):
        migrations.load("x", tmp_path)


async def test_retention_prunes_at_start_and_zero_days_keeps_everything(tmp_path):
    store = SqliteEventStore(tmp_path / "e.sqlite3")
    store.append([_event("ancient", ts=10.0), _event("fresh", ts=time.time())])
    await prune_periodically(store, 0)  # returns at once: nothing is ever deleted
    assert len(store.read_purchases()) == 2
    task = asyncio.create_task(prune_periodically(store, 400, every_s=3600))
    for _ in range(100):
        await asyncio.sleep(0.01)
        if len(store.read_purchases()) == 1:
            break
    task.cancel()
    assert [p[2] > 10.0 for p in store.read_purchases()] == [True]
    store.close()


def test_offline_readers_open_the_store_the_gateway_writes(tmp_path, pg_dsn, monkeypatch):
    """Retraining and the A/B readout read what the gateway wrote: SHOP_EVENTS_DSN first, else the SQLite file."""
    monkeypatch.delenv("SHOP_EVENTS_DSN", raising=False)
    monkeypatch.delenv("SHOP_EVENTS_DB", raising=False)
    settings = EventStoreSettings()
    store, where = open_event_store(settings, tmp_path), describe(settings, tmp_path)
    assert isinstance(store, SqliteEventStore) and where == f"sqlite {tmp_path / 'events' / 'events.sqlite3'}"
    store.close()
    writer = open_event_store(EventStoreSettings(dsn=pg_dsn), tmp_path)
    writer.append([_event("a", ts=1.0)])
    writer.close()
    monkeypatch.setenv("SHOP_EVENTS_DSN", pg_dsn)
    settings = EventStoreSettings()
    store, where = open_event_store(settings, tmp_path), describe(settings, tmp_path)
    assert where == "postgresql" and pg_dsn.split("@")[0] not in where  # no credentials in what gets printed
    assert store.read_purchases() == [("17850", "85123A", 1.0, 1, "fused")]
    store.close()


def _response(response_id: str, created: float) -> ServedResponse:
    return ServedResponse(
        response_id,
        created,
        "17850",
        "tea set — ‘gift’",
        "fused+explore=0.2",
        "b0001-20261206T000000Z",
        (("85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 3.25), ("22423", "REGENCY CAKE", -0.5)),
        (UserEvent("85123A", EventKind.PURCHASE, 1765000000.123456, 2),),
        "FREQUENTLY_BOUGHT_TOGETHER",
        ("84879", "22423"),
    )


def test_kept_responses_read_back_as_kept_and_expire(open_store):
    writer, reader = open_store(), open_store()  # two replicas
    now = time.time()
    old, fresh = _response("old", now - 7200), _response("fresh", now)
    writer.keep_response(old)
    writer.keep_response(fresh)
    writer.keep_response(_response("fresh", now - 1))  # a re-sent id keeps the first
    got = reader.served_response("fresh")
    assert got.results == fresh.results and got.recent == fresh.recent and got.query == fresh.query
    assert (got.user_id, got.variant, got.bundle_id) == (fresh.user_id, fresh.variant, fresh.bundle_id)
    assert (got.shelf, got.context) == ("FREQUENTLY_BOUGHT_TOGETHER", ("84879", "22423"))
    assert got.created == pytest.approx(now, abs=1e-6)
    assert reader.served_response("never") is None
    assert reader.prune_responses(now - 3600) == 1
    assert reader.served_response("old") is None and reader.served_response("fresh") is not None
    assert len(reader.read_purchases()) == 0  # responses are not events


async def test_expired_responses_are_deleted_by_the_retention_loop(tmp_path):
    store = SqliteEventStore(tmp_path / "e.sqlite3")
    store.keep_response(_response("old", time.time() - 7200))
    store.keep_response(_response("fresh", time.time()))
    task = asyncio.create_task(expire_responses(store, 3600))
    for _ in range(100):
        await asyncio.sleep(0.01)
        if store.served_response("old") is None:
            break
    task.cancel()
    assert store.served_response("old") is None and store.served_response("fresh") is not None
    store.close()


def test_a_kept_ranked_list_reads_back_with_what_its_later_pages_serve(open_store):
    """Paged responses keep model scores (exactly the float32 the wire carried), sources, page size and versions;
    a body kept before pages existed reads back with none of them."""
    store = open_store()
    scores = ({"fused": 1.2345678901234, "relevance": 10.0}, {"fused": -0.1, "gnn_ranker": 3.3e-7})
    sources = ((Source.LEXICAL, Source.DENSE), (Source.REPEAT_PURCHASE,))
    versions = (ModelVersion("gnn_ranker", "1"), ModelVersion("bundle", "b0001"))
    paged = replace(
        _response("paged", time.time()), page_size=20, details=tuple(zip(scores, sources)), versions=versions
    )
    store.keep_response(paged)
    got = store.served_response("paged")
    assert got.page_size == 20 and got.versions == versions
    assert [s for _, s in got.details] == list(sources)
    for (kept, _), sent in zip(got.details, scores):
        assert kept.keys() == sent.keys()
        assert all(np.float32(kept[k]) == np.float32(sent[k]) for k in sent)
    old = response_from_body("old", 1.0, '{"u":"","q":"","v":"fused","b":"","r":[["A","T",1.5]],"e":[]}')
    assert (old.page_size, old.details, old.versions, old.results) == (0, (), (), (("A", "T", 1.5),))


def test_responses_kept_before_shelves_read_back_without_them():
    from libs.events.base import response_body, response_from_body

    body = json.loads(response_body(_response("r", 1.0)))
    del body["s"], body["c"]
    got = response_from_body("r", 1.0, json.dumps(body))
    assert (got.shelf, got.context, got.query) == ("", (), "tea set — ‘gift’")


def test_baskets_of_pairs_each_purchase_with_the_rest_of_its_basket_and_follows_the_recording_order(store):
    store.append(
        [
            _event("a", user="u1", product="NEW", ts=10.0),
            _event("b", user="u1", product="85123A", ts=10.0),  # same basket as a
            _event("c", user="u1", product="22423", ts=10.0),  # same basket as a
            _event("d", user="u2", product="NEW", ts=10.0),  # alone
            _event("e", user="u2", product="85123A", ts=11.0),  # another basket
            _event("f", user="u3", product="NEW", ts=12.0, kind=EventKind.CLICK),  # not a purchase
        ]
    )
    rows, position = store.baskets_of(["NEW"])
    assert sorted(rows) == [
        ("a", "NEW", "u1", 10.0, "b", "85123A"),
        ("a", "NEW", "u1", 10.0, "c", "22423"),
        ("d", "NEW", "u2", 10.0, "", ""),
    ]
    assert store.baskets_of([])[0] == [] and store.baskets_of(["NONE"])[0] == []
    # Later: a purchase joining u2's basket, and one of an unrelated product.
    store.append([_event("g", user="u2", product="22423", ts=10.0), _event("h", user="u9", product="22423")])
    later, _ = store.baskets_of(["NEW"], position)
    assert ("d", "NEW", "u2", 10.0, "g", "22423") in later
    # A backend may return pairs again (PostgreSQL re-reads a margin); counted once, only g's pairing is new.
    assert FreshSignals.build(rows).add(later) == 1
